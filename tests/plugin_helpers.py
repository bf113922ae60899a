"""Plug-ins written the way a user's package would be: a module, and a distribution with entry points.

`write_distribution` lays out what `importlib.metadata` reads for an installed package
(a `NAME-VERSION.dist-info/` with `METADATA` and `entry_points.txt`) next to the
package's modules, so putting the directory on `sys.path` (or `PYTHONPATH`) installs it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# Two dispatchers registered from outside sweepwise. Each wraps a `LocalDispatcher` and
# appends what it is asked to do to `<marks>/<name>.txt` ("dispatch RUN_ID train", "cancel
# DISPATCH_ID by PID"); it reads logs itself (`LogReader`), marking the text as read by it.
MARKED_DISPATCHERS = textwrap.dedent(
    '''
    """Dispatchers of a user's package: local processes, each call noted in a file."""

    import os
    from pathlib import Path

    from sweepwise.dispatchers import register_dispatcher
    from sweepwise.dispatchers.local import LocalDispatcher
    from sweepwise.runtime import job_stem


    class Marked:
        name = "marked"

        def __init__(self, runs_root, experiment, *, incarnation=None, marks=None, heartbeat_interval=5.0):
            self._local = LocalDispatcher(
                runs_root, experiment, incarnation=incarnation, heartbeat_interval=heartbeat_interval
            )
            self._marks = Path(marks or os.environ["PLUG_MARKS"])
            self._run_dirs = Path(runs_root) / experiment

        def _note(self, line):
            with open(self._marks / f"{self.name}.txt", "a") as handle:
                handle.write(line + "\\n")

        def dispatch(self, job):
            dispatch_id = self._local.dispatch(job)
            self._note(f"dispatch {job.run_id} {job.type.short}")
            return dispatch_id

        def poll(self):
            return self._local.poll()

        def cancel(self, dispatch_id):
            self._note(f"cancel {dispatch_id} by {os.getpid()}")
            self._local.cancel(dispatch_id)

        def find(self, run_id, job_type, attempt=1):
            return self._local.find(run_id, job_type, attempt)

        def reattach(self, dispatch_id, run_id, job_type):
            self._local.reattach(dispatch_id, run_id, job_type)

        def wait(self, timeout):
            self._local.wait(timeout)

        def close(self):
            self._local.close()

        def read_log(self, run_id, job_type, attempt=1):
            path = self._run_dirs / run_id / f"{job_stem(job_type.short, attempt)}.log"
            return f"[read by {self.name}]\\n" + path.read_text() if path.exists() else None


    @register_dispatcher("marked_a")
    class MarkedA(Marked):
        name = "marked_a"


    @register_dispatcher("marked_b")
    class MarkedB(Marked):
        name = "marked_b"
    '''
)


def write_distribution(
    site: Path, name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> Path:
    """Write a distribution `name` 0.1 with `entry_points` ({group: {name: value}}) and `modules` into `site`.

    Returns:
        `site`, the directory to put on `sys.path`.
    """
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in names.items())
        for group, names in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))
    return site
