"""Exceptions and warnings sweepwise raises on purpose."""

from __future__ import annotations


class SweepwiseError(Exception):
    """Base class of every error sweepwise raises on purpose."""


class ConfigError(SweepwiseError, ValueError):
    """Bad user input: a spec field, a CLI word, a parameter spec.

    The message is one line that names the field and says how to fix it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class StoreError(SweepwiseError):
    """The store could not complete an operation (after retries)."""


class StoreUnavailableError(StoreError):
    """The store's server could not be reached: down, restarting, or the connection was cut.

    What was being written may or may not have committed; the store is the source of
    truth, so a controller reads it again once it answers (docs/stores.md, "Outages").
    """


class LeaseHeldError(SweepwiseError):
    """Another controller holds the experiment's lease."""


class DispatchError(SweepwiseError):
    """A dispatcher could not start, find or cancel a job."""


class RunFilesError(SweepwiseError):
    """A run directory's files could not be written (a full disk, a read-only directory).

    It stops the controller rather than failing the run: the trial is not at fault, and
    running the same command again once the disk has room resumes it.
    """

    def __init__(self, what: str, cause: OSError) -> None:
        self.cause = cause
        reason = cause.strerror or str(cause)
        super().__init__(f"{what}: {reason}; free some space and run the same command again")


class MissingExtraError(SweepwiseError, ImportError):
    """An optional integration was used without its extra installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f'{module} is not installed: run pip install "sweepwise[{extra}]"')


class SweepwiseWarning(UserWarning):
    """Warnings of our own (tests turn them into errors)."""
