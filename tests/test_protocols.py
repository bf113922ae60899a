"""Every built-in part satisfies the protocol it claims, checked at run time."""

from __future__ import annotations

from pathlib import Path

from sweepwise.core import protocols
from sweepwise.core.clock import RealClock, VirtualClock
from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.dispatchers.simulated import SimulatedDispatcher
from sweepwise.optimizers import OptimizerSpec, make_optimizer
from sweepwise.schedulers.base import JobSpec, TrainAndEvalConfig
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.schedulers.train_and_eval import TrainAndEvalScheduler
from sweepwise.space import SearchSpace
from sweepwise.stores.sql import SQLStore


def test_parts_satisfy_their_protocols(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(store, protocols.Store) and isinstance(store, protocols.StateStore)
    for dispatcher in (LocalDispatcher(tmp_path, "e"), SimulatedDispatcher(VirtualClock())):
        assert isinstance(dispatcher, protocols.Dispatcher)
        assert isinstance(dispatcher, protocols.Reattachable)
        assert isinstance(dispatcher, protocols.Waitable)
    config = BatchedSyncedSchedulerConfig(train=JobSpec(cmd="t"), parameters={"x": {"choices": [1, 2]}})
    batched = BatchedSyncedOptimizingScheduler(config)
    assert isinstance(batched, protocols.ExperimentScheduler)
    assert isinstance(batched, protocols.SchedulerWithState)
    assert isinstance(TrainAndEvalScheduler(TrainAndEvalConfig()), protocols.ExperimentScheduler)
    space = SearchSpace.from_dict({"x": {"distribution": "uniform", "min": 0, "max": 1}})
    assert isinstance(make_optimizer(OptimizerSpec(type="random", seed=0), space), protocols.Optimizer)
    assert isinstance(RealClock(), protocols.Clock) and isinstance(VirtualClock(), protocols.Clock)
