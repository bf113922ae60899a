"""A fake of `wandb.Api`, at the client boundary, for `WandbStore`'s tests (docs/stores.md, "WandbStore").

W&B's service cannot be reached from the test machines, so these tests talk to this fake in
place of `wandb.Api` (W&B's offline mode is tested for real beside it). It keeps the documented
semantics of the public API that `WandbStore` relies on:

- runs live in `entity/project`, each with `id`, `name` (display name), `group`, `tags`, `state`
  and `summary_metrics`; `Api.create_run(run_id=..., project=..., entity=...)` is an upsert
  (`upsertBucket`) of a run in state `running`; `run.update()` saves its name, group and tags;
- `Api.run("entity/project/id")` raises `RunNotFoundError` (a `ValueError`) for an unknown run,
  and caches what it returned until `Api.flush()`;
- `Api.runs(path, filters={...})` takes MongoDB-style filters: `{"group": g}`,
  `{"name": {"$in": [...]}}` (`name` is the run id), `{"$and": [...]}`;
- `run.summary.update(d)` writes the client's whole copy of the summary with `d` merged in
  (the public API's `HTTPSummary` does), so a stale copy takes back newer keys;
- reads are eventually consistent: a summary write, and a new run in `runs()` listings,
  becomes visible only after `lag` later reads of that run (deterministic, no clock);
- failures: the next `fail` calls (and every `fail_every`-th call) raise
  `wandb.errors.CommError` as a lost connection does; `deny` makes every call a
  `CommError` wrapping an HTTP 403.

The server's state is a JSON file, locked around each call, so a controller in a subprocess
and the test see one W&B.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests


class RunNotFoundError(ValueError):
    """As `wandb.apis.public.runs.RunNotFoundError`."""


def _comm_error(message: str, exc: Exception | None = None) -> Exception:
    from wandb.errors import CommError

    return CommError(message, exc=exc)


def _http_error(status: int) -> Exception:
    response = requests.Response()
    response.status_code = status
    return _comm_error(f"HTTP {status}", requests.HTTPError(response=response))


class FakeWandb:
    """The fake W&B service: its state in `path` (JSON), shared between processes."""

    def __init__(self, path: Path, *, lag: int = 0, fail: int = 0, fail_every: int = 0) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self.path.write_text(json.dumps(self._empty(lag, fail, fail_every)))

    @staticmethod
    def _empty(lag: int, fail: int, fail_every: int) -> dict[str, Any]:
        return {
            "runs": {},
            "lag": lag,
            "fail": fail,
            "fail_every": fail_every,
            "deny": False,
            "calls": {},
            "writes": [],
        }

    def api(self) -> FakeApi:
        """A new client, as `wandb.Api()` makes one."""
        return FakeApi(self)

    # -- the test's view ----------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """The whole state (runs with their latest summaries, call counts, summary writes)."""
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def set(self, **values: Any) -> None:
        """Set `lag`, `fail`, `fail_every` or `deny`."""
        with self._state() as state:
            state.update(values)

    def settle(self) -> None:
        """Let every write become visible, as W&B's reads catch up in the end."""
        with self._state() as state:
            for run in state["runs"].values():
                run.update(visible=run["summary"], hidden_reads=0, unlisted_reads=0)

    def set_state(self, path: str, state_name: str) -> None:
        """Set a run's W&B state (`finished`, `crashed`, ...), as its own job's `wandb.init` would."""
        with self._state() as state:
            state["runs"][path]["state"] = state_name

    # -- the service ---------------------------------------------------------------------------

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.path.read_text())
            try:
                yield state
            finally:  # a failed call is counted too
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state))
                tmp.replace(self.path)

    def call(self, kind: str, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """One request: counted, maybe failed (before it takes effect), else `fn(state)`."""
        with self._state() as state:
            state["calls"][kind] = state["calls"].get(kind, 0) + 1
            total = state["calls"]["total"] = state["calls"].get("total", 0) + 1
            if state["deny"]:
                raise _http_error(403)
            if state["fail"] > 0 or (state["fail_every"] and total % state["fail_every"] == 0):
                state["fail"] = max(0, state["fail"] - 1)
                state["calls"]["failed"] = state["calls"].get("failed", 0) + 1
                raise _comm_error("Connection reset by peer")
            return fn(state)

    @staticmethod
    def seen(run: dict[str, Any]) -> dict[str, Any]:
        """A read of `run`: the summary as visible now; each read brings the latest one nearer."""
        if run["hidden_reads"] > 0:
            run["hidden_reads"] -= 1
        else:
            run["visible"] = run["summary"]
        return dict(run["visible"])


def _matches(run: dict[str, Any], filters: dict[str, Any]) -> bool:
    fields = {"group": run["group"], "name": run["id"], "displayName": run["name"], "state": run["state"]}
    for key, wanted in filters.items():
        if key == "$and":
            if not all(_matches(run, clause) for clause in wanted):
                return False
        elif key not in fields:
            raise _http_error(400)
        elif isinstance(wanted, dict):
            if set(wanted) != {"$in"}:
                raise _http_error(400)
            if fields[key] not in wanted["$in"]:
                return False
        elif fields[key] != wanted:
            return False
    return True


class FakeApi:
    """`wandb.Api`: `create_run`, `run`, `runs`, `flush`."""

    def __init__(self, server: FakeWandb) -> None:
        self.server = server
        self._runs: dict[str, FakeRun] = {}

    def flush(self) -> None:
        """Forget cached runs."""
        self._runs = {}

    def create_run(self, *, run_id: str, project: str | None = None, entity: str | None = None) -> FakeRun:
        """Upsert run `run_id` in `entity/project` (state `running`)."""
        path = f"{entity or 'default'}/{project or 'uncategorized'}/{run_id}"

        def create(state: dict[str, Any]) -> dict[str, Any]:
            runs = state["runs"]
            if path not in runs:
                runs[path] = {
                    "path": path,
                    "id": run_id,
                    "name": run_id,
                    "group": None,
                    "tags": [],
                    "state": "running",
                    "summary": {},
                    "visible": {},
                    "hidden_reads": 0,
                    "unlisted_reads": state["lag"],
                }
            return dict(runs[path])

        return FakeRun(self.server, self.server.call("create_run", create), {})

    def run(self, path: str) -> FakeRun:
        """The run at `entity/project/id` (cached until `flush`)."""
        if path.count("/") == 1:
            path = f"default/{path}"
        if path in self._runs:
            return self._runs[path]

        def read(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            run = state["runs"].get(path)
            if run is None:
                raise RunNotFoundError(f"Could not find run {path}")
            return dict(run), FakeWandb.seen(run)

        attrs, summary = self.server.call("run", read)
        self._runs[path] = FakeRun(self.server, attrs, summary)
        return self._runs[path]

    def runs(self, path: str, filters: dict[str, Any] | None = None) -> list[FakeRun]:
        """The runs of `entity/project` matching `filters` that the listing shows yet."""
        prefix = (path if "/" in path else f"default/{path}") + "/"

        def list_runs(state: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
            found = []
            for run in state["runs"].values():
                if not run["path"].startswith(prefix) or not _matches(run, filters or {}):
                    continue
                if run["unlisted_reads"] > 0:  # a new run: not listed yet
                    run["unlisted_reads"] -= 1
                    continue
                found.append((dict(run), FakeWandb.seen(run)))
            return found

        return [
            FakeRun(self.server, attrs, summary) for attrs, summary in self.server.call("runs", list_runs)
        ]


class FakeSummary(dict[str, Any]):
    """`HTTPSummary`: `update(d)` writes this whole (maybe stale) copy with `d` merged in."""

    def __init__(self, run: FakeRun, values: dict[str, Any]) -> None:
        super().__init__(values)
        self._run = run

    def update(self, values: Any = None, /, **more: Any) -> None:  # type: ignore[override]
        super().update(values or {}, **more)
        self._run.write_summary(dict(self))


class FakeRun:
    """`wandb.apis.public.Run`: `id`, `name`, `group`, `tags`, `state`, `summary`, `update()`."""

    def __init__(self, server: FakeWandb, attrs: dict[str, Any], summary: dict[str, Any]) -> None:
        self._server = server
        self._path = attrs["path"]
        self.id: str = attrs["id"]
        self.name: str = attrs["name"]
        self.group: str | None = attrs["group"]
        self.tags: list[str] = list(attrs["tags"])
        self.state: str = attrs["state"]
        self.summary_metrics = dict(summary)
        self.summary = FakeSummary(self, summary)

    def update(self) -> None:
        """Save name, group and tags, then the summary (as the public API's `Run.update`)."""

        def save(state: dict[str, Any]) -> None:
            run = state["runs"][self._path]
            run.update(name=self.name, group=self.group, tags=list(self.tags))

        self._server.call("update", save)
        self.summary.update()

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Replace the run's summary (visible to reads after `lag` reads)."""

        def write(state: dict[str, Any]) -> None:
            run = state["runs"][self._path]
            run["summary"] = json.loads(json.dumps(summary))
            run["hidden_reads"] = state["lag"]
            state["writes"].append({"id": self.id, "summary": run["summary"]})

        self._server.call("summary", write)
