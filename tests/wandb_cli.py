"""`sweepwise ARGS...` whose `wandb://` stores talk to the fake W&B of tests/fake_wandb.py.

The fake's state is the file `$FAKE_WANDB`; W&B's service cannot be reached from the test
machines (docs/stores.md, "WandbStore"). Used by tests/test_wandb_store.py to run, kill and
restart real controller processes on a `WandbStore`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_wandb import FakeWandb  # noqa: E402
from sweepwise.stores.location import DEFAULT_STORE, open_store, register_store  # noqa: E402
from sweepwise.stores.wandb_store import WandbStore, parse_wandb_url  # noqa: E402


def open_fake(url: str) -> WandbStore:
    """The `WandbStore` of `url`, on the fake W&B."""
    entity, project, options = parse_wandb_url(url)
    ledger = open_store(options.get("ledger", DEFAULT_STORE))
    api = FakeWandb(Path(os.environ["FAKE_WANDB"])).api
    return WandbStore(project, entity, ledger=ledger, api=api, backoff=0.01)


register_store("wandb", replace=True)(open_fake)

if __name__ == "__main__":
    from sweepwise._entry import main

    main()
