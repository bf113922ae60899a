"""The local dispatcher's side of the job host (`sweepwise.runtime.jobhost`).

The host is started on first use. Submitting a job is one line written to its stdin
(no answer is awaited); the host writes a job's key on its stdout once the job's
final status is on disk, and `ended_keys` collects those lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from sweepwise.runtime.supervise import proc_start_time

# Hosts whose stdin was closed keep running until their jobs end; they are reaped here.
_LINGERING: list[subprocess.Popen[bytes]] = []


class JobHostClient:
    """Starts the job host on first use and sends it jobs."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self.pid = 0
        self.pid_start: int | None = None

    def alive(self) -> bool:
        """Whether the host this client started still runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def fileno(self) -> int:
        """The host's stdout, readable when a job has ended (or the host has)."""
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.fileno()

    def wait_for_exit(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the host to exit (a host whose stdin is closed is exiting)."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass

    def submit(self, request: dict[str, Any]) -> None:
        """Send one job to the host, starting the host first if needed.

        Raises:
            OSError: the host could not be started or has stopped.
        """
        if not self.alive():
            self.start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise OSError(f"the job host stopped: {exc}") from exc

    def start(self) -> None:
        """Start a new host (an earlier one finishes its jobs and exits).

        Raises:
            OSError: the host could not be started.
        """
        self._retire()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sweepwise.runtime.jobhost"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # outlives the controller, like the jobs it supervises
            close_fds=True,
        )
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._pending = b""
        self.pid = self._proc.pid
        self.pid_start = proc_start_time(self.pid)

    def ended_keys(self) -> tuple[list[str], bool]:
        """Keys of the jobs that ended since the last call, and whether the host has ended."""
        if self._proc is None or self._proc.stdout is None:
            return [], True
        data = b""
        gone = False
        while True:
            try:
                chunk = os.read(self._proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                gone = True
                break
            data += chunk
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [line.decode() for line in lines if line], gone

    def _retire(self) -> None:
        """Let the current host finish its jobs and exit (it is reaped later)."""
        if self._proc is None:
            return
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        _LINGERING.append(self._proc)
        self._proc = None

    def close(self) -> None:
        """Take no more jobs; running jobs go on under the host, which then exits."""
        self._retire()


def reap_lingering_hosts() -> None:
    """Reap the hosts that have exited since they were retired."""
    _LINGERING[:] = [proc for proc in _LINGERING if proc.poll() is None]


__all__ = ["JobHostClient", "reap_lingering_hosts"]
