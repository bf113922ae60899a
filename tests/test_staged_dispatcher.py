"""Per-stage dispatchers: `eval_dispatcher` in specs and recipes, and the `StagedDispatcher` routing jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sweepwise.app.config import apply_overrides
from sweepwise.app.experiment import Experiment
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import LogReader, Reattachable, Waitable
from sweepwise.dispatchers import DISPATCHERS, register_dispatcher
from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.dispatchers.simulated import SimulatedDispatcher
from sweepwise.dispatchers.staged import StagedDispatcher
from sweepwise.recipes import AdaptiveTool

TRAIN, EVAL = JobTypes.LAUNCH_TRAINING, JobTypes.LAUNCH_EVAL


class _Plain:
    """A dispatcher with no optional capability."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def dispatch(self, job: JobDefinition) -> str:
        return f"plain:{job.run_id}"

    def poll(self) -> list[JobEvent]:
        return []

    def cancel(self, dispatch_id: str) -> None:
        self.cancelled.append(dispatch_id)


def _job(run_id: str, job_type: JobTypes) -> JobDefinition:
    return JobDefinition(run_id=run_id, cmd=["true"], type=job_type)


def test_jobs_go_to_their_stage_and_events_come_from_both() -> None:
    clock = VirtualClock()
    train, evaluate = SimulatedDispatcher(clock), SimulatedDispatcher(clock)
    staged = StagedDispatcher(train, evaluate)
    assert isinstance(staged, Reattachable) and isinstance(staged, Waitable)
    assert not isinstance(staged, LogReader)
    ids = [staged.dispatch(_job("a", TRAIN)), staged.dispatch(_job("b", EVAL))]
    assert [(r.run_id, r.job_type) for r in train.started] == [("a", TRAIN)]
    assert [(r.run_id, r.job_type) for r in evaluate.started] == [("b", EVAL)]
    finished = [event for event in staged.poll() if event.kind is EventKind.FINISHED]
    assert sorted(event.dispatch_id for event in finished) == sorted(ids)
    assert staged.find("a", TRAIN) == ids[0] and staged.find("a", EVAL) is None
    assert staged.find("b", EVAL) == ids[1]
    staged.reattach(ids[1], "b", EVAL)
    assert [event.dispatch_id for event in staged.poll() if event.kind is EventKind.FINISHED] == [ids[1]]


def test_cancel_follows_the_dispatch_id_and_capabilities_follow_the_parts() -> None:
    train, evaluate = _Plain(), _Plain()
    staged = StagedDispatcher(train, evaluate)
    assert not isinstance(staged, Reattachable | Waitable | LogReader)
    eval_id = staged.dispatch(_job("x", EVAL))
    staged.cancel(eval_id)
    staged.cancel("never-seen")  # an id it never issued: the training dispatcher's
    assert (train.cancelled, evaluate.cancelled) == (["never-seen"], [eval_id])
    mixed = StagedDispatcher(_Plain(), SimulatedDispatcher(VirtualClock()))
    assert isinstance(mixed, Waitable) and not isinstance(mixed, Reattachable)
    assert isinstance(mixed, StagedDispatcher) and type(mixed) is not type(staged)


_SPEC: dict[str, Any] = {
    "name": "staged",
    "scheduler": {"type": "train_and_eval", "max_trials": 1},
    "train": {"cmd": ["python", "-c", "pass"]},
    "eval": {"cmd": ["python", "-c", "pass"]},
}


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for dispatcher in made:
        dispatcher.close()


def test_a_spec_s_eval_dispatcher_builds_a_staged_dispatcher(tmp_path: Path, closing: list[Any]) -> None:
    same = Experiment.from_dict(dict(_SPEC), base_dir=tmp_path)
    dispatcher, _ = same.make_dispatcher()
    closing.append(dispatcher)
    assert type(dispatcher) is LocalDispatcher and "eval_dispatcher" not in same.record()["spec"]
    words = ["eval_dispatcher=local", "eval_dispatcher.grace_period=1"]
    staged_experiment = Experiment.from_dict(dict(_SPEC), base_dir=tmp_path, words=words)
    staged, _ = staged_experiment.make_dispatcher(incarnation="i1")
    closing.append(staged)
    assert isinstance(staged, StagedDispatcher) and isinstance(staged, Reattachable | Waitable)
    assert type(staged.train) is LocalDispatcher and type(staged.eval) is LocalDispatcher
    assert staged.eval._grace_period == 1 and staged.train._grace_period == 10  # type: ignore[attr-defined]
    assert staged_experiment.record()["spec"]["eval_dispatcher"] == {"type": "local", "grace_period": 1}


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"eval_dispatcher": "k8s"}, "eval_dispatcher", "unknown dispatcher 'k8s'; choose one of: local"),
        (
            {"eval_dispatcher": {"type": "local", "bogus": 1}},
            "eval_dispatcher.bogus",
            "takes no option 'bogus'",
        ),
        ({"eval_dispatcher": "simulated"}, "eval_dispatcher", "both stages must use it alike"),
        ({"eval_dispatcher": {"type": "local", "heartbeat_interval": 3000}}, "stale_after", "heartbeat"),
        ({"dispatcher": "no_incarnation"}, "dispatcher", "cannot be built as factory(runs_root, experiment"),
    ],
)
def test_bad_stage_dispatchers_are_refused_at_load(
    tmp_path: Path, extra: dict[str, Any], field: str, message: str
) -> None:
    @register_dispatcher("no_incarnation")
    def _no_incarnation(runs_root: Path, experiment: str) -> _Plain:
        return _Plain()

    try:
        with pytest.raises(ConfigError) as info:
            Experiment.from_dict({**_SPEC, **extra}, base_dir=tmp_path)
    finally:
        DISPATCHERS.unregister("no_incarnation")
    assert info.value.field == field and message in info.value.message


def test_resuming_with_another_stage_dispatcher_is_refused(tmp_path: Path) -> None:
    stored = Experiment.from_dict(dict(_SPEC), base_dir=tmp_path).record()
    moved = Experiment.from_dict(
        {**_SPEC, "eval_dispatcher": "simulated", "dispatcher": "simulated"}, base_dir=tmp_path
    )
    with pytest.raises(ConfigError) as info:
        moved.check_resume(stored)
    assert (
        info.value.field == "dispatcher"
        and "train jobs' dispatcher changed from 'local'" in info.value.message
    )
    tuned = Experiment.from_dict(
        {**_SPEC, "eval_dispatcher": {"type": "local", "grace_period": 2}}, base_dir=tmp_path
    )
    note = tuned.check_resume(stored)  # an option is allowed, and described
    assert note is not None and note.startswith("note: resuming experiment 'staged' with changed ")
    assert "eval_dispatcher.grace_period (<unset> -> 2)" in note


def test_the_recipe_tool_takes_eval_dispatcher_type() -> None:
    tool = AdaptiveTool(
        scheduler_type="train_and_eval", dispatcher_type="LOCAL", eval_dispatcher_type="Simulated"
    )
    spec = tool.experiment_spec()
    assert (tool.dispatcher_type, tool.eval_dispatcher_type) == ("local", "simulated")
    assert spec.eval_dispatcher is not None and spec.eval_dispatcher.type == "simulated"
    assert AdaptiveTool(scheduler_type="train_and_eval").experiment_spec().eval_dispatcher is None
    refused = "unknown dispatcher 'cloud'; choose one of: local, ray, simulated"
    with pytest.raises(ValidationError, match=refused):
        AdaptiveTool(scheduler_type="train_and_eval", eval_dispatcher_type="cloud")


def test_eval_dispatcher_words() -> None:
    data = apply_overrides(
        {"eval_dispatcher": {"type": "local", "grace_period": 3}}, ["eval_dispatcher=ray"], []
    )
    assert data["eval_dispatcher"] == {"type": "ray", "grace_period": 3}
    assert apply_overrides({}, ["eval_dispatcher.grace_period=1"], [])["eval_dispatcher"] == {
        "grace_period": 1
    }
