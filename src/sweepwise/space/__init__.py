"""The search space: parameter specs, their validation, and the map to [-1, 1] and back.

Every parameter has one normalised dimension. A value is first moved into its
distribution's natural space (linear, log10, log2 for powers of two, logit, or the
index of a choice) and then mapped linearly so that the range's ends sit at -1 and 1.
Optimizers work in that box; `SearchSpace.denormalize` turns a point back into a
suggestion of plain Python scalars.
"""

from __future__ import annotations

from sweepwise.space.search_space import SearchSpace
from sweepwise.space.spec import AUTO_SCALE, Distribution, ParameterSpec, Scalar

__all__ = ["AUTO_SCALE", "Distribution", "ParameterSpec", "Scalar", "SearchSpace"]
