"""The benchmarks' process pool: spawned workers that end with the benchmark, however it stops."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from multiprocessing.pool import Pool
from types import FrameType


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM (what `kill` and a session's end send) leaves the block as `SystemExit(143)`.

    143 is a shell's code for "ended by SIGTERM"; leaving by an exception runs every
    `finally` on the way out, so a file being written is cleaned up and a pool is ended.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Pool]:
    """A pool of `workers` spawned processes, ended when the block is left in any way.

    Finished, failed, Ctrl-C or SIGTERM: the pool's workers are ended before the benchmark
    exits. SIGTERM would otherwise end the benchmark alone, and its workers would run their
    tasks on; here it leaves the block as `SystemExit(143)` (`sigterm_exits`).
    """
    with sigterm_exits(), multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool
