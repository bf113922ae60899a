"""Moving experiments in and out of a store: `sweepwise export` and `sweepwise import` (docs/stores.md)."""
