"""Python recipes: `sweepwise run examples.recipes.sweeps.train_and_eval max_trials=3`.

`jobs.py` holds the entrypoint functions the jobs run (`train`, `evaluate`);
`sweeps.py` holds the recipe functions that return an `AdaptiveTool`.
"""
