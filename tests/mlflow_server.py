"""A real `mlflow server` on 127.0.0.1 with a SQLite backend store, for the mirror tests and benchmark.

The server is MLflow's full package, which pins an older pyarrow than the test environment's:
it lives in its own virtualenv, `$SWEEPWISE_MLFLOW_SERVER`, else one made under
~/.cache/sweepwise-tests the first time it is needed (docs/stores.md, "Mirrors").
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

MLFLOW_VERSION = "3.17.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweepwise-tests"


def server_binary() -> str:
    """The `mlflow` executable that runs the server: `$SWEEPWISE_MLFLOW_SERVER`, else a virtualenv of
    its own under ~/.cache/sweepwise-tests, made (with pip, from the package index) the first time.

    Raises:
        RuntimeError: the virtualenv could not be made (pip's output is in the message).
    """
    configured = os.environ.get("SWEEPWISE_MLFLOW_SERVER")
    if configured:
        return configured
    venv = CACHE / f"mlflow-{MLFLOW_VERSION}"
    binary = venv / "bin" / "mlflow"
    if os.access(binary, os.X_OK):
        return str(binary)
    shutil.rmtree(venv, ignore_errors=True)  # a half-made one
    python = shutil.which("python3") or "python3"
    for argv in (
        [python, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", f"mlflow=={MLFLOW_VERSION}"],
    ):
        made = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
        if made.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"cannot make the MLflow server's virtualenv: {made.stdout}{made.stderr}")
    return str(binary)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """One `mlflow server` process; `stop()` and `start()` again keep its port and database."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.binary = server_binary()
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
