"""A small process that forks job supervisors for the local dispatcher.

Forking the controller itself copies its page tables — tens of megabytes once numpy,
scipy and SQLAlchemy are loaded — on every job. This server imports only the standard
library and the supervisor, so a fork costs a fraction of a millisecond. The
controller sends one JSON request per line on the server's stdin and reads the
supervisor's pid back from its stdout. Supervisors run in their own sessions and
outlive both the server and the controller; the server ignores SIGCHLD so the kernel
reaps them, and exits when its stdin closes (the controller ended or died).

Run as `python -m sweepwise.runtime.forkserver`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from sweepwise.runtime.supervise import fork_supervisor

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import IO, Any


def _start(request: dict[str, Any]) -> int:
    return fork_supervisor(
        request["argv"],
        cwd=request["cwd"],
        env=request["env"],
        log_path=request["log_path"],
        status_path=request["status_path"],
        run_dir=request["run_dir"],
        job_name=request["job_name"],
        heartbeat_interval=request["heartbeat_interval"],
        child_setup=_restore_sigchld,
    )


def _restore_sigchld() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the supervisor waits for its job


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Answer fork requests until `requests` ends."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited supervisors
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in requests:
        try:
            reply: dict[str, Any] = {"pid": _start(json.loads(line))}
        except Exception as exc:  # a bad request must not end the server
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


class ForkServer:
    """The controller's side: starts the server on first use and asks it to fork."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def start_supervisor(self, request: dict[str, Any]) -> int:
        """Fork a supervisor for `request` (the arguments of `fork_supervisor`); return its pid.

        Raises:
            OSError: the server could not be started or did not answer.
        """
        proc = self._server()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, ValueError) as exc:
            self._proc = None
            raise OSError(f"the fork server stopped: {exc}") from exc
        if not line:
            self._proc = None
            raise OSError("the fork server stopped without answering")
        reply = json.loads(line)
        if "pid" not in reply:
            raise OSError(f"the fork server could not start the job: {reply.get('error')}")
        return int(reply["pid"])

    def _server(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "sweepwise.runtime.forkserver"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a Ctrl-C at the terminal is the controller's to handle
                close_fds=True,
            )
        return self._proc

    def close(self) -> None:
        """Let the server exit (running supervisors are not affected)."""
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            self._proc.wait()
            self._proc = None


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
