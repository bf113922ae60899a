"""A real `mlflow server` on 127.0.0.1 with a SQLite backend store, for the mirror tests and benchmark.

The server is MLflow's full package, which pins an older pyarrow than the test environment's:
it lives in its own virtualenv, `$SWEEPWISE_MLFLOW_SERVER` or `/work/venv-mlflow/bin/mlflow`,
else `mlflow` on the PATH (.ci/run installs it so; docs/stores.md, "Mirrors").
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

_CANDIDATES = ("/work/venv-mlflow/bin/mlflow",)


def server_binary() -> str | None:
    """The `mlflow` executable that can run a server, or None."""
    configured = os.environ.get("SWEEPWISE_MLFLOW_SERVER")
    if configured:
        return configured
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mlflow")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """One `mlflow server` process; `stop()` and `start()` again keep its port and database."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = server_binary()
        if binary is None:
            raise RuntimeError(
                "no mlflow server binary: set SWEEPWISE_MLFLOW_SERVER (see tests/mlflow_server.py)"
            )
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The tracking URI."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it answers `/health`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "server.log").open("ab")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        self.process = subprocess.Popen(
            [
                self.binary, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{self.directory / 'mlflow.db'}",
                "--default-artifact-root", str(self.directory / "artifacts"),
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.directory / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(
            f"mlflow server did not answer in {timeout} s; see {self.directory / 'server.log'}"
        )

    def stop(self) -> None:
        """Stop the server (its own process group: uvicorn's worker too) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None
