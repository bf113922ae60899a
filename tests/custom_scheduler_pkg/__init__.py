"""A package outside sweepwise that adds a scheduler, its entrypoint jobs and a recipe (for the tests)."""
