"""The `sweepwise` command line: run, status, logs, cancel, best, doctor, dashboard, report.

Read-only commands (`status`, `best`, `logs`) import neither the numeric stack nor
the controller, so they start fast.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sweepwise import __version__
from sweepwise.app.help_format import PlainCommand, PlainGroup
from sweepwise.core import keys
from sweepwise.core.errors import (
    ConfigError,
    LeaseHeldError,
    MissingExtraError,
    StoreUnavailableError,
    SweepwiseError,
)
from sweepwise.core.status import JobStatus

if TYPE_CHECKING:
    from sweepwise.app.display import LiveDisplay
    from sweepwise.app.experiment import Experiment
    from sweepwise.app.views import RunReader
    from sweepwise.core.models import JobTypes
    from sweepwise.engine.controller import AdaptiveController
    from sweepwise.stores import ExperimentRecord
    from sweepwise.stores.sql import SQLStore

_T = TypeVar("_T")

_RECIPE_TARGET = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")

app = typer.Typer(
    name="sweepwise",
    help="Adaptive experiments: hyperparameter sweeps and train->eval pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=PlainGroup,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        # `\\[`: rich reads a bare `[...]` as markup and drops it
        help="SQLAlchemy URL of the store \\[default: $SWEEPWISE_STORE or ./sweepwise.db]",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sweepwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", help="print the version and exit", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Adaptive experiments: hyperparameter sweeps and train->eval pipelines."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _checked_url(url_option: str | None) -> str:
    """The store URL in force, checked without connecting (exit 2 with one line if it cannot be opened)."""
    from sweepwise.stores.location import check_store_url, resolve_store_url

    url = resolve_store_url(url_option)
    try:
        check_store_url(url)
    except (ConfigError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None
    return url


def _open_store(url_option: str | None, *, must_exist: bool = True) -> SQLStore:
    from sweepwise.stores.location import open_store

    store = open_store(_checked_url(url_option))
    if must_exist and not store.exists():
        raise _fail(f"no sweepwise store at {store.url}; run a sweep first or pass --store URL", 1)
    return store


def _open_reader(url_option: str | None) -> RunReader:
    from sweepwise.stores.location import open_reader
    from sweepwise.stores.sqlite_reader import SQLiteReader

    reader = open_reader(_checked_url(url_option))
    if not reader.exists():
        path = getattr(reader, "path", None)
        if isinstance(reader, SQLiteReader) and reader.path.is_file() and reader.unreadable_here():
            raise _fail(
                f"{path} cannot be read here: its folder cannot be written, and a controller has "
                "it open (or left its -wal and -shm files); read it where it is written, or copy "
                "the store with its -wal file to a folder you can write",
                1,
            )
        if isinstance(path, Path) and path.is_file():
            raise _fail(
                f"{path} is not a sweepwise store (not a SQLite database, or no sweepwise tables); "
                "pass --store with the URL of a sweepwise store",
                1,
            )
        raise _fail(f"no sweepwise store at {reader.url}; run a sweep first or pass --store URL", 1)
    return reader


def _or_fail(read: Callable[[], _T]) -> _T:
    try:
        return read()
    except SweepwiseError as exc:
        raise _fail(str(exc), 1) from None


def _experiment_record(store: SQLStore, name: str) -> Any:
    record = store.get_experiment(name)
    if record is None:
        names = ", ".join(e.name for e in store.list_experiments()) or "none"
        raise _fail(f"no experiment named {name!r} in {store.url} (experiments: {names})", 1)
    return record


@app.command(cls=PlainCommand, context_settings={"allow_extra_args": False})
def run(
    target: Annotated[
        str, typer.Argument(help="a spec file (sweep.yaml) or a recipe function (package.module.function)")
    ],
    words: Annotated[
        list[str] | None,
        typer.Argument(help="key=value words: recipe parameters and overrides", show_default=False),
    ] = None,
    store: StoreOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="log lines only, no live table")] = False,
    help_recipe: Annotated[
        bool,
        typer.Option("--help-recipe", help="show a recipe's parameters and overridable fields, then exit"),
    ] = False,
) -> None:
    """Run (or resume) an experiment until it is complete.

    TARGET is a YAML spec, or a recipe: a function `package.module.function`
    (importable from the current directory) that returns an AdaptiveTool. Words
    naming the function's parameters are passed to it; the others override the
    returned tool (`max_parallel=2`, `scheduler.batch_size=8`, `batch_size=8`).
    """
    if help_recipe:
        _help_recipe(target, words or [])
        return
    try:
        experiment = validate_run(target, words or [], store)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from sweepwise.app.display import LiveDisplay
    from sweepwise.stores.location import open_store

    if quiet:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
        )
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are migrations' chatter
    sql = open_store(experiment.store_url(store))  # reads only until ensure_experiment
    existing = sql.get_experiment(experiment.name) if sql.exists() else None
    try:
        note = experiment.check_resume(existing.spec) if existing is not None else None
        experiment.check_runs_dir(existing)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    if note is not None:
        typer.echo(note, err=True)
    try:
        warm = experiment.load_warm_start(sql)  # reads only: a bad name writes nothing
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    if warm is not None and warm.skipped:
        total = warm.skipped + len(warm.observations)
        typer.echo(
            f"warning: warm_start: skipped {warm.skipped} of {total} runs: each misses a parameter "
            "of this experiment's space or has a value outside it",
            err=True,
        )
    record = sql.ensure_experiment(experiment.name, experiment.record())  # the first write
    try:
        experiment.mark_runs_dir(record.incarnation, sql.url)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    experiment = experiment.resume(record.spec)
    if existing is not None and existing.status == "cancelled":
        sql.set_experiment_status(experiment.name, "running")  # running it again resumes it
    display = LiveDisplay(experiment, enabled=not quiet)
    controller = experiment.build_controller(
        sql,
        on_tick=display.update,
        incarnation=record.incarnation,
        warm_start=None if warm is None else warm.observations,
    )
    controller.on_start = experiment.write_adaptive_config  # only once the lease is ours
    if existing is not None:
        typer.echo(f"resuming experiment {experiment.name!r} from {sql.url}", err=True)

    def resume(earlier: AdaptiveController) -> AdaptiveController:  # after a store outage
        resumed = experiment.build_controller(
            earlier.store,  # the same store (and mirror) objects
            on_tick=display.update,
            incarnation=record.incarnation,
            warm_start=None if warm is None else warm.observations,
        )
        resumed.resume_from(earlier)
        return resumed

    try:
        with _signals_interrupt():
            failure = _run_and_close(controller, display, sql, resume)
    except LeaseHeldError as exc:
        raise _fail(str(exc), 3) from None
    except KeyboardInterrupt as exc:
        typer.echo("interrupted: jobs keep running; run the same command again to resume", err=True)
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    if failure == "":
        summary = f"experiment {experiment.name!r} ended with no completed trial"
        raise _fail(f"{summary}; see `sweepwise status {experiment.name}` and `sweepwise logs`", 1)
    if failure is not None:
        raise _fail(f"experiment {experiment.name!r} {failure}", 1)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, which stop the controller as Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While the controller runs, SIGTERM and SIGHUP interrupt it as Ctrl-C does."""
    stops = [signal.SIGTERM, signal.SIGHUP]
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_and_close(
    controller: AdaptiveController,
    display: LiveDisplay,
    sql: SQLStore,
    resume: Callable[[AdaptiveController], AdaptiveController],
) -> str | None:
    """Run the sweep, print its summary, then close the dispatcher and the store.

    Returns None when the sweep did what was asked; why it stopped when its controller
    halted it (`AdaptiveController.halted`); "" when trials failed or were lost and none
    completed (a sweep whose runs were all cancelled did what the user asked).

    When the store's server goes away, waits for it (`app.outage`) and goes on with
    `resume(controller)`, a controller that reads everything back from the store.

    After a failure the closing is quiet: a close that fails too (the same full disk)
    is logged at debug level and the failure that stopped the sweep is the one raised.
    """
    from sweepwise.app.outage import wait_for_store

    try:
        with display:
            while True:
                try:
                    runs = controller.run()
                    break
                except StoreUnavailableError as exc:
                    _close_quietly(getattr(controller.dispatcher, "close", None))  # jobs keep running
                    if not wait_for_store(sql, controller.experiment, exc, say=_say):
                        raise
                    controller = resume(controller)
        display.print_summary(runs)
        statuses = {run.status for run in runs}
        succeeded = bool(statuses & {JobStatus.COMPLETED, JobStatus.STOPPED}) or not any(
            status.is_failure() for status in statuses
        )
        failure = controller.halted if controller.halted is not None else None if succeeded else ""
    except BaseException:
        _close_quietly(getattr(controller.dispatcher, "close", None))
        _close_quietly(getattr(controller.store, "close", sql.close))
        raise
    for close in (getattr(controller.dispatcher, "close", None), getattr(controller.store, "close", None)):
        if close is not None:
            close()
    return failure


def _close_quietly(close: Callable[[], object] | None) -> None:
    """`close()`, a failure logged at debug level: the error that stopped the sweep stays the one raised."""
    try:
        if close is not None:
            close()
    except Exception as exc:
        logging.getLogger(__name__).debug("closing after a failed run: %s", exc)


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _is_recipe_target(target: str) -> bool:
    """A dotted `package.module.function` that is not a file (and not a spec file name)."""
    return (
        _RECIPE_TARGET.fullmatch(target) is not None
        and not target.endswith(_SPEC_SUFFIXES)
        and not Path(target).exists()
    )


def validate_run(target: str, words: list[str], store: str | None = None) -> Experiment:
    """The experiment `sweepwise run TARGET WORDS...` would run, checked before anything is written.

    Checks the spec (or recipe) and its overrides, the job commands, that the store's
    driver is installed and its directory exists, and that the runs directory can be
    created. Writes nothing (docs/design.md; README, "Bad input").

    Args:
        target: a spec file, or a recipe function `package.module.function`.
        words: `key=value` overrides (and a recipe's parameters).
        store: the `--store` URL, if given.

    Raises:
        ConfigError: any of these checks fails.
    """
    from sweepwise.app.experiment import Experiment
    from sweepwise.stores.location import check_store_url

    if _is_recipe_target(target):
        from sweepwise.recipes.loading import ensure_on_path, load_function
        from sweepwise.recipes.tool import call_recipe

        ensure_on_path()  # recipes import from the current directory, like `python -m`
        experiment = call_recipe(load_function(target), words, name=target).to_experiment(Path.cwd())
    else:
        path = Path(target)
        if not path.exists():
            raise ConfigError(
                target,
                "no such spec file; give the path of a YAML spec (e.g. sweep.yaml) "
                "or a recipe function (package.module.function)",
            )
        experiment = Experiment.from_file(path, words)
    check_store_url(experiment.store_url(store))
    experiment.check_runs_dir_creatable()
    return experiment


def _help_recipe(target: str, words: list[str]) -> None:
    """Print a recipe's parameters and overridable fields (`run --help-recipe`)."""
    from sweepwise.recipes.describe import describe_recipe
    from sweepwise.recipes.loading import ensure_on_path, load_function
    from sweepwise.recipes.tool import call_recipe

    if not _is_recipe_target(target):
        raise _fail(f"--help-recipe: {target} is not a recipe; give package.module.function")
    ensure_on_path()
    try:
        fn = load_function(target)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        tool, note = call_recipe(fn, words, name=target), None
    except ConfigError as exc:
        tool, note = None, f"(its tool's fields are listed once the recipe can be called: {exc})"
    typer.echo(describe_recipe(fn, target, tool, note), nl=False)


@app.command(cls=PlainCommand)
def status(
    experiment: Annotated[str | None, typer.Argument(help="experiment name; all when omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    store: StoreOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="every run, not only the newest 30")] = False,
) -> None:
    """Show the runs of an experiment (or every experiment)."""
    from sweepwise.app.views import experiments_payload, status_payload
    from sweepwise.core.jsonsafe import dumps_rows, dumps_strict

    reader = _open_reader(store)
    if experiment is None:
        listing = experiments_payload(reader)
        if as_json:
            typer.echo(dumps_strict(listing, indent=2))
        else:
            from sweepwise.app.display import print_experiments

            print_experiments(listing["experiments"])
        return
    payload = _or_fail(lambda: status_payload(reader, experiment))
    if as_json:
        typer.echo(dumps_rows(payload, "runs", default=str))
    else:
        from sweepwise.app.display import print_status

        print_status(payload, limit=None if show_all else 30)


@app.command(cls=PlainCommand)
def mirror(
    experiment: Annotated[str, typer.Argument(help="experiment name")],
    store: StoreOption = None,
) -> None:
    """Copy what the experiment's `mirror` has not got yet to it, now (docs/stores.md, "Mirrors")."""
    from sweepwise.stores.mirrors import MirrorWorker, build_mirror, check_mirror

    sql = _open_store(store)
    record = _experiment_record(sql, experiment)
    try:
        spec = check_mirror(record.spec.get("spec", {}).get("mirror"))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if spec is None:
        raise _fail(f"experiment {experiment!r} has no mirror; add mirror: mlflow (or wandb) to its spec", 1)
    target = build_mirror(spec)
    worker = MirrorWorker(sql, target, experiment)
    try:
        sent = worker.drain_once()
    except Exception as exc:
        why = worker.last_error or exc
        raise _fail(f"mirror {target.name} failed: {why}; run the same command again", 1) from None
    finally:
        target.close()
        sql.close()
    typer.echo(f"mirror {target.name}: up to date ({sent} runs sent)")


@app.command(cls=PlainCommand)
def best(
    experiment: Annotated[str, typer.Argument(help="experiment name")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    store: StoreOption = None,
) -> None:
    """Show the best completed run of an experiment and its parameters."""
    from sweepwise.app.views import best_payload, no_best
    from sweepwise.core.jsonsafe import dumps_strict

    reader = _or_fail(lambda: _open_reader(store))
    row = _or_fail(lambda: best_payload(reader, experiment))
    if as_json:
        typer.echo(dumps_strict(row, indent=2, default=str))
    if row["run_id"] is None:
        raise _fail(_or_fail(lambda: no_best(reader, experiment)), 1)
    if not as_json:
        from sweepwise.app.display import print_best

        print_best(row)


@app.command("export", cls=PlainCommand)
def export_(
    experiment: Annotated[str, typer.Argument(help="experiment name")],
    fmt: Annotated[str, typer.Option("--format", metavar="csv|json|parquet", help="the file format")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="write to FILE (default: stdout)")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write every run of an experiment: parameters, score, cost, results, status, attempts, runtime.

    One row per run, a `param.NAME` column per parameter and a `result.KEY` column per
    reported value. Parquet needs --out and pyarrow (pip install "sweepwise[parquet]").
    """
    from sweepwise.app.transfer.export import ExportFormat, check_export, export_table, write_export
    from sweepwise.core.errors import MissingExtraError

    try:
        chosen = ExportFormat.parse(fmt)
        check_export(chosen, out)
    except (ConfigError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None
    try:
        table = export_table(_open_reader(store), experiment)
    except SweepwiseError as exc:
        raise _fail(f"EXPERIMENT: {exc}; `sweepwise status` lists them", 1) from None
    text = write_export(table, chosen, out)
    if text is not None:
        sys.stdout.buffer.write(text.encode("utf-8", errors="backslashreplace"))
    else:
        typer.echo(f"wrote {len(table.rows)} runs of {experiment!r} to {out}", err=True)


@app.command("import", cls=PlainCommand)
def import_(
    name: Annotated[str, typer.Argument(help="the new experiment's name")],
    csv_file: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="a CSV in the export's format")
    ] = None,
    optuna_storage: Annotated[
        str | None, typer.Option("--optuna-storage", metavar="URL", help="an Optuna storage URL")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="the Optuna study's name")] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="what the score is \\[default: score, or the study's]")
    ] = None,
    goal: Annotated[
        str | None,
        typer.Option("--goal", metavar="maximize|minimize", help="\\[default: maximize, or the study's]"),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Record finished runs from a CSV file or an Optuna study as a new, finished experiment.

    Its runs are COMPLETED with their parameters, score and cost, so `status` and
    `best` show them and a sweep's `warm_start: NAME` learns from them.
    """
    from sweepwise.app.transfer.imported import record_import
    from sweepwise.core.errors import MissingExtraError

    try:
        _check_import_args(name, csv_file, optuna_storage, study, goal)
        if csv_file is not None:
            from sweepwise.app.transfer.csv_source import read_csv_runs

            found = read_csv_runs(csv_file)
            runs, skipped, source = found.runs, found.skipped, "csv"
            metric, goal = metric or "score", goal or "maximize"
        else:
            from sweepwise.app.transfer.optuna_source import read_study

            loaded = read_study(str(optuna_storage), str(study))
            runs, skipped, source = loaded.runs, loaded.skipped, "optuna"
            metric, goal = metric or loaded.metric or "value", goal or loaded.goal
        if not runs:
            where = "--csv" if csv_file is not None else "--study"
            raise ConfigError(where, "holds no completed run with a score; there is nothing to import")
        from sweepwise.stores.location import check_store_url, resolve_store_url

        url = resolve_store_url(store)
        check_store_url(url)
    except (ConfigError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None
    sql = _open_store(url, must_exist=False)
    try:
        count = record_import(sql, name, runs, metric=metric, goal=goal, source=source)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    finally:
        sql.close()
    left_out = f" ({skipped} not completed, left out)" if skipped else ""
    typer.echo(f"imported {count} runs into experiment {name!r} in {sql.url}{left_out}", err=True)


def _check_import_args(
    name: str, csv_file: Path | None, storage: str | None, study: str | None, goal: str | None
) -> None:
    """Refuse a bad `import` command line before anything is read.

    Raises:
        ConfigError: a bad name or goal, or not exactly one source.
    """
    from pydantic import ValidationError

    from sweepwise.app.config import ExperimentSpec, config_error

    try:
        ExperimentSpec.model_validate({"name": name})
    except ValidationError as exc:
        raise ConfigError("NAME", config_error(exc).message) from None
    if goal not in (None, "maximize", "minimize"):
        raise ConfigError("--goal", f"unknown goal {goal!r}; use maximize or minimize")
    if (csv_file is None) == (storage is None):
        raise ConfigError("--csv", "give one source: --csv FILE, or --optuna-storage URL --study STUDY")
    if storage is not None and study is None:
        raise ConfigError("--study", "is required with --optuna-storage; give the study's name")


@app.command(cls=PlainCommand)
def logs(
    run_id: Annotated[str, typer.Argument(help="the run's id (see `sweepwise status`)")],
    job: Annotated[str, typer.Option("--job", help="train or eval")] = "train",
    lines: Annotated[int, typer.Option("--lines", "-n", help="last N lines; 0 for all")] = 0,
    store: StoreOption = None,
) -> None:
    """Print a job's output (its latest attempt's), and why it failed if it did."""
    from sweepwise.app.display import printable
    from sweepwise.core.models import JobTypes

    if job not in ("train", "eval"):
        raise _fail(f"--job: unknown job {job!r}; use train or eval")
    if lines < 0:
        raise _fail(f"--lines: {lines} is negative; give a count of lines, or 0 for all")
    from sweepwise.app.views import experiment_record

    reader = _open_reader(store)  # reads only: a store on a read-only file system will do
    found = _or_fail(lambda: reader.fetch_runs({"run_id": run_id}))
    if not found:
        raise _fail(f"no run {run_id!r} in {reader.url}; see `sweepwise status` for run ids", 1)
    run = found[0]
    record = _or_fail(lambda: experiment_record(reader, run.group or ""))
    job_type = JobTypes.from_short(job)
    attempt = run.attempt(job_type)
    text = _or_fail(lambda: _job_log(record, run_id, job_type, attempt))
    text_lines = text.splitlines()
    for line in text_lines[-lines:] if lines > 0 else text_lines:
        typer.echo(line)
    code = run.summary.get(keys.TRAIN_EXIT_CODE if job == "train" else keys.EVAL_EXIT_CODE)
    if attempt > 1:
        typer.echo(f"--- attempt {attempt} of the {job} job (earlier attempts: {job}.<N>.log)", err=True)
    # the run's error is the eval job's once training completed, else the train job's
    error = run.error if (job == "eval") == run.has_completed_training else None
    if error or code not in (None, 0):
        said = f"exit code {code}"
        why = [] if code is None or (error or "").startswith(said) else [said]  # the error may say it
        why += [printable(error)] if error else []
        typer.echo(f"--- {job} job of {run_id}: {run.status.value}, {', '.join(why)}", err=True)


def _job_log(record: ExperimentRecord, run_id: str, job_type: JobTypes, attempt: int) -> str:
    """A job's log (`sweepwise.app.job_logs.job_log`, which the dashboard reads too)."""
    from sweepwise.app.job_logs import job_log

    return job_log(record, run_id, job_type, attempt)


@app.command(cls=PlainCommand)
def cancel(
    target: Annotated[str, typer.Argument(help="a run id or an experiment name")],
    store: StoreOption = None,
    is_run: Annotated[bool, typer.Option("--run", help="TARGET is a run id")] = False,
    is_experiment: Annotated[bool, typer.Option("--experiment", help="TARGET is an experiment name")] = False,
) -> None:
    """Cancel a run, or every unfinished run of an experiment (jobs get SIGTERM)."""
    from sweepwise.app.cancel import cancel_target

    if is_run and is_experiment:
        raise _fail("--run and --experiment: give one of them, not both")
    sql = _open_store(store)
    try:
        message = cancel_target(sql, target, "run" if is_run else "experiment" if is_experiment else None)
    except SweepwiseError as exc:
        raise _fail(str(exc), 1) from None
    typer.echo(message)


@app.command(cls=PlainCommand)
def doctor(
    spec: Annotated[
        Path | None,
        typer.Argument(help="a spec: check its dispatchers (with their options) and its jobs' containers"),
    ] = None,
    dispatcher: Annotated[
        str | None, typer.Option("--dispatcher", metavar="NAME", help="check this dispatcher only")
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", metavar="RUNTIME", help="check this container runtime too")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Check a backend: one line per check, with the fix for each one that fails.

    With a spec, its dispatchers and its jobs' containers; with neither a
    spec nor --dispatcher, every registered dispatcher. Exit code 0 when
    every check passes, 1 when one fails. The SLURM check submits one tiny
    test job; nothing else is started.
    """
    from sweepwise.app.doctor import as_json as check_json
    from sweepwise.app.doctor import render, run_doctor, targets
    from sweepwise.core.jsonsafe import dumps_strict

    try:
        runs_root, found = targets(spec, dispatcher=dispatcher, container=container)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    results = []
    for label, check in run_doctor(found, runs_root):
        results.append(check_json(label, check))
        if not as_json:
            typer.echo(render(label, check))
    failed = sum(not result["ok"] for result in results)
    if as_json:
        typer.echo(dumps_strict({"ok": not failed, "checks": results}, indent=2))
    elif failed:
        typer.echo(f"{failed} of {len(results)} checks failed", err=True)
    if failed:
        raise typer.Exit(1)


@app.command(cls=PlainCommand)
def dashboard(
    store: StoreOption = None,
    host: Annotated[
        str, typer.Option("--host", help="address to listen on; any but loopback needs a token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on")] = 8080,
    token: Annotated[
        str | None,
        typer.Option("--token", help="token every request must carry (one is generated off loopback)"),
    ] = None,
) -> None:
    """Serve a live web view of the store's experiments (docs/dashboard.md)."""
    from sweepwise.dashboard.extra import check_extra

    _or_fail(lambda: check_extra("dashboard"))
    from sweepwise.dashboard.serve import serve
    from sweepwise.stores.location import resolve_store_url

    serve(resolve_store_url(store), host, port, token, say=_say)


@app.command("report", cls=PlainCommand)
def report_(
    experiment: Annotated[str, typer.Argument(help="experiment name")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="the HTML file to write")],
    store: StoreOption = None,
) -> None:
    """Write one self-contained HTML file with the experiment's plots and best runs (docs/dashboard.md)."""
    from sweepwise.dashboard.extra import check_extra

    _or_fail(lambda: check_extra("report"))
    if not out.absolute().parent.is_dir():
        raise _fail(
            f"--out: directory {out.absolute().parent} does not exist; create it or pick another path"
        )
    if out.is_dir():
        raise _fail(f"--out: {out} is a directory; give a file to write, e.g. {out / 'report.html'}")
    from sweepwise.dashboard.report import write_report

    size = _or_fail(lambda: write_report(_open_reader(store), experiment, out))
    typer.echo(f"wrote {out} ({size / 1e6:.1f} MB, opens offline)")


@app.command(
    "exec",
    cls=PlainCommand,
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(ctx: typer.Context) -> None:
    """Run one job command under supervision: `sweepwise exec [OPTIONS] -- CMD...` (used by jobs).

    The console script hands `exec` to `sweepwise.runtime.exec` before this CLI is
    loaded; `sweepwise exec --help` lists its options.
    """
    from sweepwise.runtime.exec import main as exec_main

    raise typer.Exit(exec_main(list(ctx.args)))


# A file system's errors the user can fix, and how (errno -> hint).
_DISK_ERRORS = {
    errno.ENOSPC: "free some space and run the same command again",
    errno.EDQUOT: "free some space and run the same command again",
    errno.EROFS: "make the file system writable, then run the same command again",
    errno.EIO: "check the disk, then run the same command again",
}


def _is_utf8(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run_app() -> None:
    """Run the typer app, turning our errors into one line on stderr.

    Exit codes: 2 for bad input (`ConfigError`), 1 for any other failure we raise (the
    store failed, its disk is full) and for a full or failing disk, 3 when another
    controller runs the experiment, 130 on Ctrl-C.
    """
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SweepwiseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        hint = _DISK_ERRORS.get(exc.errno or 0)
        if hint is None:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}; {hint}", err=True)
        sys.exit(1)
    except UnicodeEncodeError:
        # a word the terminal gave as bytes that are not UTF-8 (sys.argv holds them as surrogates)
        words = [word for word in sys.argv[1:] if not _is_utf8(word)]
        if not words:
            raise
        shown = words[0].encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
        typer.echo(
            f"error: '{shown}' is not UTF-8 text; experiment names, run ids and store URLs are", err=True
        )
        sys.exit(2)
