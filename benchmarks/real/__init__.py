"""Real problems: scikit-learn models tabulated on a grid (build.py), their look-ups and curves."""
