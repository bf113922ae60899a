"""Which GPUs of this machine are free, for jobs that ask for `gpus: N`.

GPUs are named by what goes into `CUDA_VISIBLE_DEVICES`: indices (`"0"`, `"3"`) or
UUIDs (`"GPU-8d0c…"`, `"MIG-…"`), so a pool detected from a UUID list hands out
UUIDs and the job sees exactly the devices it was given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

_NO_DEVICES = frozenset({"", "-1", "NoDevFiles"})


class GpuPool:
    """A set of GPUs handed out whole to jobs, keyed by an owner (a run id or job key).

    Not thread-safe: one dispatcher owns a pool.

    Args:
        gpu_ids: the GPUs to manage, as indices or `CUDA_VISIBLE_DEVICES` names.
    """

    def __init__(self, gpu_ids: Sequence[int | str]) -> None:
        ids = [str(gpu).strip() for gpu in gpu_ids]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate GPU ids in {ids}")
        self._ids = ids
        self._owners: dict[str, list[str]] = {}

    @classmethod
    def detect(cls) -> GpuPool:
        """The GPUs this process may use.

        From `CUDA_VISIBLE_DEVICES` if set (empty, `-1` or `NoDevFiles` = none), else
        from `nvidia-smi --query-gpu=index --format=csv,noheader` if it is installed
        and answers within 10 s, else no GPUs.
        """
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return cls(_parse_visible(visible))
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return cls([])
        try:
            out = subprocess.run(
                [smi, "--query-gpu=index", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return cls([])
        return cls([line.strip() for line in out.splitlines() if line.strip()])

    @property
    def ids(self) -> list[str]:
        """Every GPU of the pool."""
        return list(self._ids)

    @property
    def free(self) -> list[str]:
        """The GPUs no owner holds, in pool order."""
        used = {gpu for held in self._owners.values() for gpu in held}
        return [gpu for gpu in self._ids if gpu not in used]

    def __len__(self) -> int:
        return len(self._ids)

    def held_by(self, owner: str) -> list[str]:
        """The GPUs `owner` holds (empty if none)."""
        return list(self._owners.get(owner, []))

    def acquire(self, owner: str, n: int) -> list[str] | None:
        """Give `owner` `n` free GPUs.

        Args:
            owner: who holds them until `release(owner)`, e.g. a run id.
            n: how many GPUs (> 0).

        Returns:
            The GPUs given (the ones already held if `owner` holds `n`), or None when
            fewer than `n` are free; nothing is taken then.

        Raises:
            ValueError: if `n` is not positive or `owner` holds a different number.
        """
        if n <= 0:
            raise ValueError(f"a job asks for a positive number of GPUs, got {n}")
        held = self._owners.get(owner)
        if held is not None:
            if len(held) != n:
                raise ValueError(f"{owner!r} already holds GPUs {held}; release them first")
            return list(held)
        free = self.free
        if len(free) < n:
            return None
        self._owners[owner] = free[:n]
        return free[:n]

    def reserve(self, owner: str, gpu_ids: Iterable[int | str]) -> None:
        """Record that `owner` holds these GPUs (a job found again after a restart).

        GPUs not in the pool are ignored; a GPU held by another owner is shared.
        """
        known = set(self._ids)
        self._owners[owner] = [gpu for gpu in (str(g) for g in gpu_ids) if gpu in known]

    def release(self, owner: str) -> None:
        """Give back what `owner` holds (no error if nothing)."""
        self._owners.pop(owner, None)


def _parse_visible(value: str) -> list[str]:
    ids: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if name in _NO_DEVICES:
            break  # like CUDA: an invalid entry hides itself and every later one
        ids.append(name)
    return ids


__all__ = ["GpuPool"]
