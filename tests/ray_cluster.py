"""A throwaway local Ray cluster: `ray start --head` on 127.0.0.1, stopped by its own processes' ids.

`ray stop` stops every Ray process of the user on the machine (other clusters too), so
the cluster is started in a session of its own and stopped by signalling the processes
of that session and their descendants (Ray's workers and the jobs they started), and
nothing else. Used by tests/test_ray_dispatcher.py and benchmarks/backends.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalRayCluster:
    """A head-only Ray cluster on 127.0.0.1 with `num_cpus` CPUs, in a temp dir of its own.

    Attributes:
        address: the Jobs API's URL (the dashboard): `http://127.0.0.1:<port>`.
        gcs_address: the cluster's GCS address, `127.0.0.1:<port>`.
    """

    def __init__(self, num_cpus: int = 4) -> None:
        self.num_cpus = num_cpus
        # Short: Ray's unix sockets live under it (paths are limited to 107 bytes).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="swray", dir="/tmp"))
        self.gcs_address = f"127.0.0.1:{_free_port()}"
        self.dashboard_port = _free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self._session: int | None = None

    def start(self) -> None:
        """Start the cluster; returns once its Jobs API answers.

        Raises:
            RuntimeError: `ray start` failed (its output is in the message).
        """
        ray = Path(sys.executable).with_name("ray")
        env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Without this, `ray start` turns token authentication on whenever ~/.ray/auth_token exists
        # (any `ray.init()` on the machine writes one), and clients without the token are refused.
        env["RAY_AUTH_MODE"] = "disabled"
        argv = [
            str(ray),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={self.gcs_address.rpartition(':')[2]}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the cluster's daemons keep this session: `stop` finds them by it
        )
        self._session = process.pid
        output, _ = process.communicate(timeout=180)
        if process.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed (exit {process.returncode}):\n{output[-3000:]}")
        self._wait_for_jobs_api(output)

    def _wait_for_jobs_api(self, output: str) -> None:
        from ray.job_submission import JobSubmissionClient

        deadline = time.monotonic() + 120
        while True:
            try:
                JobSubmissionClient(self.address).list_jobs()
                return
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError...
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the Ray Jobs API at {self.address} never answered: {exc}\n{output}"
                    ) from None
                time.sleep(0.5)

    def client(self) -> Any:
        """A `JobSubmissionClient` of this cluster."""
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address)

    def stop(self) -> None:
        """Stop every process of the cluster's session and their descendants; remove its temp dir."""
        import psutil

        try:
            import ray

            if ray.is_initialized():  # this process joined the cluster (jobs run as tasks)
                ray.shutdown()
        except ImportError:
            pass
        if self._session is not None:
            procs: dict[int, psutil.Process] = {}
            for proc in psutil.process_iter():
                try:
                    if os.getsid(proc.pid) == self._session:
                        for member in (proc, *proc.children(recursive=True)):
                            procs[member.pid] = member
                except (OSError, psutil.Error):
                    continue
            procs.pop(os.getpid(), None)
            for proc in procs.values():
                try:
                    proc.send_signal(signal.SIGTERM)
                except psutil.Error:
                    pass
            _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
            for proc in alive:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(alive, timeout=5)
            self._session = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)


__all__ = ["LocalRayCluster"]
