"""`WandbStore`: a sweep's runs in W&B, kept exactly once by a SQL ledger (docs/stores.md, "WandbStore").

W&B's public API has no compare-and-set and its summary reads lag its writes, so W&B cannot
itself decide that a trial or a hook happened once. The ledger (a `SQLStore`) does: every
`ExperimentStore` call is forwarded to it (intents, events, leases, transactions, scheduler
state), and once a write has committed, the runs it changed are written to W&B at once, with
retries (`WandbRuns`). The ledger's update numbers say what W&B has not seen yet: a marker
("written up to update N", with the last error) is kept in the ledger beside the mirrors'
(`sweepwise status` shows it), so a crash or an outage between the two is caught up by the
next write of the next run. Needs `pip install "sweepwise[wandb]"`; W&B is imported lazily.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sweepwise.core.errors import ConfigError, StoreError
from sweepwise.core.models import JobDefinition, RunInfo
from sweepwise.core.protocols import ExperimentStore
from sweepwise.stores._forwarding import ForwardingStore
from sweepwise.stores._wandb_runs import WandbRuns, wandb_summary
from sweepwise.stores.location import DEFAULT_STORE, register_store
from sweepwise.stores.mirrors._worker import load_marker, save_marker

_URL_OPTIONS = frozenset({"ledger", "mode", "dir"})


class WandbStore(ForwardingStore):
    """Runs grouped by experiment in the W&B project `ENTITY/PROJECT`; `ledger` keeps them exactly once.

    Implements `sweepwise.core.protocols.ExperimentStore` by forwarding to `ledger`; reads
    (`fetch_runs`, `fetch_changed`) come from the ledger, which holds what W&B shows and
    more (jobs, attempts, update numbers). `store.wandb` reads and writes W&B itself
    (`WandbRuns`: the seed's `init_run`, `fetch_runs`, `update_run_summary`).

    Args:
        project: the W&B project.
        entity: the W&B entity (user or team); default the API key's.
        ledger: the store of record (a `SQLStore`).
        api: makes the `wandb.Api`-like client (default `wandb.Api(timeout=30)`).
        mode: `online`, or `offline` (runs written under `dir` with `wandb.init(mode="offline")`
            for `wandb sync`).
        dir: where offline runs' files go (default W&B's: `./wandb`).
        retries: attempts per W&B call, the first included.
        backoff: the first wait between attempts, in seconds (it doubles, up to 30 s).
    """

    def __init__(
        self,
        project: str,
        entity: str | None = None,
        *,
        ledger: ExperimentStore,
        api: Callable[[], Any] | None = None,
        mode: str = "online",
        dir: str | None = None,
        retries: int = 6,
        backoff: float = 0.5,
    ) -> None:
        super().__init__(ledger)
        self.wandb = WandbRuns(project, entity, api=api, mode=mode, dir=dir, retries=retries, backoff=backoff)
        self._experiments: set[str] = set()
        self._seqs: dict[str, int] = {}  # experiment -> the ledger's update number W&B has
        self._sent: dict[str, dict[str, Any]] = {}  # run id -> the W&B summary last written
        self._created: set[str] = set()
        self._lock = threading.RLock()

    @classmethod
    def from_url(cls, url: str) -> WandbStore:
        """The store of `wandb://ENTITY/PROJECT[?ledger=URL&mode=offline&dir=PATH]`.

        `wandb://PROJECT` is the API key's default entity. The ledger defaults to
        `sqlite:///sweepwise.db` in the current directory.

        Raises:
            ConfigError: a malformed URL, or W&B is not installed.
        """
        entity, project, options = parse_wandb_url(url)
        from sweepwise.stores.location import open_store

        ledger = open_store(options.get("ledger", DEFAULT_STORE))
        return cls(project, entity, ledger=ledger, mode=options.get("mode", "online"), dir=options.get("dir"))

    @staticmethod
    def check_url(url: str) -> None:
        """Check `url` and that W&B and the ledger's driver are installed, connecting to nothing.

        Raises:
            ConfigError: what to fix, in one line.
        """
        _, _, options = parse_wandb_url(url)
        from sweepwise.stores.location import check_store_url

        check_store_url(options.get("ledger", DEFAULT_STORE))

    @property
    def name(self) -> str:
        """What `sweepwise status` calls this store's W&B side (`wandb-store ENTITY/PROJECT`)."""
        return f"wandb-store {self.wandb.path}"

    @property
    def url(self) -> str:
        """`wandb://ENTITY/PROJECT`, with the ledger's URL."""
        return f"wandb://{self.wandb.path} (ledger {self.store.url})"  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"WandbStore({self.wandb.path!r}, ledger={self.store!r})"

    # -- what names an experiment: W&B follows the experiments this store was asked about --------

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `ExperimentStore.acquire_lease`; once taken, W&B is brought up to date."""
        self._experiments.add(experiment)
        acquired = super().acquire_lease(experiment, owner, ttl, now)
        if acquired:  # catch up with what a process that died (or W&B's outage) left unwritten
            self.sync(experiment)
        return acquired

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """See `ExperimentStore.fetch_changed`."""
        self._experiments.add(experiment)
        return super().fetch_changed(experiment, since_seq)

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """See `ExperimentStore.record_training_intent`."""
        self._experiments.add(experiment)
        super().record_training_intent(experiment, job, suggestion, trial_index)

    def ensure_experiment(self, name: str, spec: dict[str, Any]) -> Any:
        """The ledger's `ensure_experiment`."""
        self._experiments.add(name)
        return self.store.ensure_experiment(name, spec)  # type: ignore[attr-defined]

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """Create a PENDING run in the ledger, then in W&B (see `SQLStore.init_run`)."""
        if group is not None:
            self._experiments.add(group)
        self.store.init_run(run_id, group, tags, initial_summary)  # type: ignore[attr-defined]
        self._committed()

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """See `ExperimentStore.update_run_summary`."""
        self._note_run(run_id)
        return super().update_run_summary(run_id, summary_update)

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """See `ExperimentStore.mark_failed`."""
        self._note_run(run_id)
        return super().mark_failed(run_id, reason)

    def cancel_run(self, run_id: str) -> bool:
        """See `ExperimentStore.cancel_run`."""
        self._note_run(run_id)
        return super().cancel_run(run_id)

    def _note_run(self, run_id: str) -> None:
        for run in self.store.fetch_runs({"run_id": run_id}):
            if run.group is not None:
                self._experiments.add(run.group)

    # -- writing through to W&B ----------------------------------------------------------------

    def _committed(self) -> None:
        for experiment in sorted(self._experiments):
            self.sync(experiment)

    def sync(self, experiment: str) -> int:
        """Write to W&B every run of `experiment` the ledger changed since W&B's marker; how many changed.

        Raises:
            StoreError: W&B failed after retries (the marker keeps the error; the next write retries).
        """
        with self._lock:  # one writer to W&B at a time, whatever thread committed
            return self._sync(experiment)

    def _sync(self, experiment: str) -> int:
        self._experiments.add(experiment)
        seq = self._seqs.get(experiment)
        if seq is None:
            seq = int(self._marker(experiment).get("seq", 0))
        runs, latest = self.store.fetch_changed(experiment, seq)
        try:
            for run in runs:
                self._push(run)
        except StoreError as exc:
            self._save_marker(experiment, {**self._marker(experiment), "last_error": str(exc)[:300]})
            raise
        if latest != seq or self._seqs.get(experiment) is None:
            self._save_marker(experiment, {"seq": latest, "last_error": None, "mirrored_at": time.time()})
        self._seqs[experiment] = latest
        return len(runs)

    def _push(self, run: RunInfo) -> None:
        """Write `run`'s W&B summary in one call (a hook's update with its flag), creating the run first."""
        content = wandb_summary(run)
        if self._sent.get(run.run_id) == content:
            return  # a change W&B does not show (a dispatch id, a heartbeat)
        updated = run.run_id in self._created and self.wandb.update_run_summary(run.run_id, content)
        if not updated:  # an upsert: after a restart it finds the run it created before
            self.wandb.init_run(run.run_id, run.group, list(run.tags), content)
            self._created.add(run.run_id)
        self._sent[run.run_id] = content

    def _marker(self, experiment: str) -> dict[str, Any]:
        return load_marker(self.store, experiment, self.name)

    def _save_marker(self, experiment: str, marker: dict[str, Any]) -> None:
        save_marker(self.store, experiment, self.name, marker)


def parse_wandb_url(url: str) -> tuple[str | None, str, dict[str, str]]:
    """`(entity, project, options)` of `wandb://ENTITY/PROJECT?ledger=URL&mode=offline&dir=PATH`.

    Raises:
        ConfigError: a malformed URL, an unknown option or mode, or W&B is not installed.
    """
    parts = urlsplit(url)
    names = [part for part in (parts.netloc, *parts.path.split("/")) if part]
    if parts.scheme != "wandb" or not 1 <= len(names) <= 2:
        raise ConfigError("store", f"{url!r}: use wandb://ENTITY/PROJECT or wandb://PROJECT")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - _URL_OPTIONS)
    if unknown:
        raise ConfigError("store", f"unknown option {unknown[0]!r} in {url!r}; use ledger, mode or dir")
    if options.get("mode", "online") not in ("online", "offline"):
        raise ConfigError("store", f"mode must be online or offline, not {options['mode']!r}")
    if options.get("ledger", "").startswith("wandb:"):
        raise ConfigError(
            "store", f"{url!r}: the ledger must be a SQL store (sqlite:///..., postgresql://...)"
        )
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError("store", 'a wandb:// store needs the wandb package; pip install "sweepwise[wandb]"')
    entity = names[0] if len(names) == 2 else None
    return entity, names[-1], options


class _Factory:
    """Builds the `WandbStore` of a `wandb://` URL; `check_url` checks one without connecting."""

    def __call__(self, url: str) -> WandbStore:
        return WandbStore.from_url(url)

    @staticmethod
    def check_url(url: str) -> None:
        WandbStore.check_url(url)


register_store("wandb")(_Factory())

__all__ = ["WandbStore", "parse_wandb_url"]
