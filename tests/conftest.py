"""Test-wide settings: fast XLA compiles, strict rank promotion, small CPU."""

import os

# Compile speed matters more than run speed for the tiny shapes of the tests.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
