"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` in a temp dir, on 127.0.0.1.

The tests that need PostgreSQL start one server per session with this (Debian's
`postgresql` package provides the binaries; `.ci/install-postgres` installs it). It listens on a free
port on 127.0.0.1 and on a Unix socket in its own directory, trusts local connections,
and can be stopped and started again mid-test (a server restart under a running sweep).
Run as root, the server runs as the `postgres` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL_HINT = "install Debian's PostgreSQL: apt-get install -y postgresql"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bin_dir() -> Path:
    """The directory of PostgreSQL's server binaries (`initdb`, `pg_ctl`), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(f"PostgreSQL's initdb was not found; {INSTALL_HINT}")


class LocalPostgres:
    """A PostgreSQL server of its own in a temp dir.

    Attributes:
        url: the SQLAlchemy URL of its `postgres` database, as the `postgres` superuser.
        port: its TCP port on 127.0.0.1.
    """

    def __init__(self) -> None:
        self._bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="swpg", dir="/tmp"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        """Make the cluster (the first time) and start the server; returns once it takes connections.

        Raises:
            RuntimeError: initdb or pg_ctl failed (their output is in the message).
        """
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not self.data.exists():
            made = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            if made.returncode != 0:
                raise RuntimeError(f"initdb failed: {made.stdout}{made.stderr}")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=on"
        started = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start"
        )
        if started.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}{log[-2000:]}")
        deadline = time.monotonic() + 60
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port)).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the PostgreSQL server did not take connections within 60 s")
            time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: roll back open transactions and close connections; `immediate`: crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop the server and start it again on the same port, with the same data."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        if self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["INSTALL_HINT", "LocalPostgres"]
