"""Grid search: every point of a parameter grid trained and evaluated exactly once.

The grid is the cartesian product of each parameter's values: every choice of a
categorical parameter, every value of an ordinal one, and `points` values evenly spaced
across a numeric range in the parameter's own normalisation (in log space for
`log_normal`, whole numbers for `int_uniform`, powers of two for `uniform_pow2`; values
that round to the same number count once). Points go out in a fixed order, and which ones are taken is read
from the suggestion stored on every run, so a restarted controller never trains a
point twice and never skips one.
"""

from __future__ import annotations

import itertools
import json
import logging
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import Field

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.core.runs import RunList, changed_since, with_status
from sweepwise.schedulers import register_scheduler
from sweepwise.schedulers.base import (
    TemplateEnvironment,
    TrainAndEvalConfig,
    create_eval_job,
    create_training_job,
    generate_run_id,
)
from sweepwise.schedulers.search import check_resource_parameters
from sweepwise.space import Distribution, ParameterSpec, Scalar, SearchSpace

logger = logging.getLogger(__name__)

_POINTS = "points"


class GridSearchConfig(TrainAndEvalConfig):
    """Configuration of a grid search.

    A numeric parameter may set its own number of values with `points: N` inside its
    spec (e.g. `lr: {distribution: log_normal, min: 1e-4, max: 1e-1, points: 4}`).

    Attributes:
        parameters: the search space (see `SearchSpace.from_dict`), plus optional `points`.
        max_trials: how many grid points to run, in grid order; None runs the whole grid.
        points: values per numeric parameter that does not give its own `points`.
    """

    experiment_id: str = "grid_search"
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_trials: int | None = Field(default=None, ge=1)  # type: ignore[assignment]
    points: int = Field(default=5, ge=2, description="values per numeric parameter")


def _looks_like_spec(value: object) -> bool:
    # The same rule as `SearchSpace.from_dict`: a spec names a distribution or choices,
    # or holds a value that is not a mapping; any other mapping is a group of specs.
    if not isinstance(value, Mapping) or not value:
        return False
    if "distribution" in value or "choices" in value:
        return True
    return any(not isinstance(v, Mapping) for v in value.values())


def _split_points(mapping: Mapping[str, Any], prefix: str, points: dict[str, object]) -> dict[str, Any]:
    """`mapping` without the `points` keys of its specs, which go to `points` by dot path."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if _looks_like_spec(value):
            spec = dict(value)
            if _POINTS in spec:
                points[name] = spec.pop(_POINTS)
            out[key] = spec
        elif isinstance(value, Mapping) and value:
            out[key] = _split_points(value, name, points)
        else:
            out[key] = value
    return out


def _axis(spec: ParameterSpec, points: int) -> list[Scalar]:
    """A parameter's grid values, in increasing order (choices in their given order)."""
    if spec.distribution in (Distribution.CATEGORICAL, Distribution.ORDINAL):
        return list(spec.discrete_values() or [])
    steps = [-1.0 + 2.0 * i / (points - 1) for i in range(points)]
    return list(dict.fromkeys(spec.from_unit(u) for u in steps))


def _canonical(value: object) -> str:
    # JSON text tells 1, 1.0 and true apart, and is what the store keeps.
    return json.dumps(value, sort_keys=True)


class Grid:
    """The grid of a search space: its axes, its points in order, and point lookup.

    Points are never all held in memory: a grid can be far larger than the number of
    trials run from it.

    Args:
        parameters: parameter specs as in `SearchSpace.from_dict`, each numeric one with
            an optional `points`.
        points: values per numeric parameter without its own `points` (>= 2).

    Raises:
        ConfigError: a bad spec, or a bad `points` (field `parameters.<name>.points`).
    """

    def __init__(self, parameters: Mapping[str, Any], points: int = 5) -> None:
        own_points: dict[str, object] = {}
        clean = _split_points(parameters, "", own_points) if isinstance(parameters, Mapping) else parameters
        self.space = SearchSpace.from_dict(clean)
        check_resource_parameters(self.space)  # a `gpus` / `nodes` axis is each run's resource request
        for name in self.space.names:  # the grid's points are positions in a full product
            if self.space.specs[name].when:
                raise ConfigError(
                    f"parameters.{name}.when",
                    "grid_search takes no conditional parameters; use scheduler batched_synced "
                    "with optimizer: {type: grid}, which drops inactive ones (docs/optimizers.md)",
                )
        self.axes: list[tuple[str, list[Scalar]]] = []
        for name in self.space.names:
            spec = self.space.specs[name]
            count = _check_points(name, spec, own_points.get(name, points), name in own_points)
            self.axes.append((name, _axis(spec, count)))
        self._index = [{_canonical(value): i for i, value in enumerate(values)} for _, values in self.axes]

    def __len__(self) -> int:
        size = 1
        for _, values in self.axes:
            size *= len(values)
        return size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The points in grid order (the last parameter, by name, varies fastest)."""
        names = [name for name, _ in self.axes]
        for combo in itertools.product(*(values for _, values in self.axes)):
            yield dict(zip(names, combo, strict=True))

    def key_at(self, position: int) -> tuple[int, ...]:
        """The key of the point at `position` (0-based) in grid order."""
        digits: list[int] = []
        for _, values in reversed(self.axes):
            position, digit = divmod(position, len(values))
            digits.append(digit)
        return tuple(reversed(digits))

    def point(self, key: tuple[int, ...]) -> dict[str, Any]:
        """The suggestion of the point with this key."""
        return {name: values[i] for (name, values), i in zip(self.axes, key, strict=True)}

    def key(self, suggestion: Mapping[str, Any]) -> tuple[int, ...] | None:
        """The point's index on each axis, or None when `suggestion` is not a grid point."""
        out: list[int] = []
        for (name, _), index in zip(self.axes, self._index, strict=True):
            if name not in suggestion:
                return None
            position = index.get(_canonical(suggestion[name]))
            if position is None:
                return None
            out.append(position)
        return tuple(out)


def _check_points(name: str, spec: ParameterSpec, value: object, own: bool) -> int:
    field = f"parameters.{name}.{_POINTS}"
    if own and spec.distribution is Distribution.CATEGORICAL:
        raise ConfigError(field, "a categorical parameter uses every choice; remove points")
    if own and spec.distribution is Distribution.ORDINAL:
        raise ConfigError(field, "an ordinal parameter uses every value; remove points")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 2:
        raise ConfigError(field, f"must be a whole number of at least 2 (got {value!r})")
    return int(value)


@register_scheduler("grid_search", GridSearchConfig)
class GridSearchScheduler(TemplateEnvironment[GridSearchConfig]):
    """Trains every grid point once (the first `max_trials` when set) and evaluates each.

    Which points are taken is read from the runs' stored suggestions
    (`observation/suggestion`, written with each run before its training starts), never
    from what this object scheduled, so a new scheduler after a restart picks up exactly
    where the old one stopped. With the controller's `RunList` only the runs changed
    since the last call are read.

    Args:
        config: the typed config.

    Raises:
        ConfigError: a bad parameter spec or `points`.
    """

    def __init__(self, config: GridSearchConfig) -> None:
        self.config = config
        self.grid = Grid(config.parameters, config.points)
        self.size = len(self.grid)
        self.target = self.size if config.max_trials is None else min(config.max_trials, self.size)
        if config.max_trials is not None and config.max_trials > self.size:
            logger.info(
                "max_trials=%d exceeds the grid's %d points: running the grid", config.max_trials, self.size
            )
        self._source: RunList | None = None
        self._seen = 0
        self._taken: set[tuple[int, ...]] = set()  # grid points with a run
        self._done: set[tuple[int, ...]] = set()  # grid points with a finished run
        self._cursor = 0  # every point before it is taken

    def schedule(self, runs: Sequence[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        """Evals for every trained run; the next grid points not yet taken, bounded by slots.

        Args:
            runs: every run of the experiment.
            available_training_slots: how many trainings may start now.

        Returns:
            The eval jobs first, then the training jobs.
        """
        self._sync(runs)
        jobs = [
            create_eval_job(self.config, run) for run in with_status(runs, JobStatus.TRAINING_DONE_NO_EVAL)
        ]
        to_launch = min(max(0, available_training_slots), self.target - len(self._taken))
        if to_launch <= 0:
            return jobs
        while self._cursor < self.size and self.grid.key_at(self._cursor) in self._taken:
            self._cursor += 1
        trial, position = len(runs), self._cursor
        while to_launch > 0 and position < self.size:
            key = self.grid.key_at(position)
            position += 1
            if key in self._taken:
                continue
            trial += 1
            to_launch -= 1
            point = self.grid.point(key)
            jobs.append(
                create_training_job(self.config, generate_run_id(self.config.experiment_id, trial), point)
            )
            logger.info("scheduling grid point %s as trial %d", point, trial)
        return jobs

    def is_experiment_complete(self, runs: Sequence[RunInfo]) -> bool:
        """True once `max_trials` grid points (or every point) have a finished run."""
        self._sync(runs)
        return len(self._done) >= self.target

    def _sync(self, runs: Sequence[RunInfo]) -> None:
        if not isinstance(runs, RunList) or runs is not self._source:
            # A plain list carries no change log: read it whole.
            self._source = runs if isinstance(runs, RunList) else None
            self._seen, self._cursor = 0, 0
            self._taken.clear()
            self._done.clear()
        changed, self._seen = changed_since(runs, self._seen)
        for run in changed:
            key = self.grid.key(run.suggestion)
            if key is None:
                continue
            self._taken.add(key)
            if run.status.is_finished():
                self._done.add(key)


__all__ = ["Grid", "GridSearchConfig", "GridSearchScheduler"]
