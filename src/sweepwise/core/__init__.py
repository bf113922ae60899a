"""The bottom layer: data models, summary keys, protocols, errors, clock, run lists and a trial's life.

Nothing here imports another part of sweepwise (docs/design.md, "A trial's life").
"""
