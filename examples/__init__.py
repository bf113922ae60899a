"""Runnable examples; `examples.recipes` is importable from the repository root."""
