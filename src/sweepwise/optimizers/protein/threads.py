"""One BLAS thread while Protein suggests (docs/optimizers.md, "Speed").

BLAS's thread count belongs to the process. Two suggestions at once in two threads must not
leave it at one when both are done, whichever ends first: the first to start sets the limit
and the last to end lifts it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

_lock = threading.Lock()
_users = 0
_limit: Any = None  # the threadpoolctl limit in force while any suggestion runs


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside; the process's own thread count back after the last one ends."""
    global _users, _limit
    with _lock:
        if _users == 0:
            _limit = threadpool_limits(1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limit.restore_original_limits()
                _limit = None
