"""Test-wide settings: fast XLA compiles, strict rank promotion, small CPU, one compile cache."""

import os
import tempfile
import uuid

# Compile speed matters more than run speed for the tiny shapes of the tests.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Many tests (and the CLI subprocesses they start) compile the same tiny programs: one XLA
# cache per test session, shared by its xdist workers and subprocesses through the
# environment, and new for every session (nothing carries over from an earlier run).
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.setdefault(
    "IKEJAX_TEST_RUN", uuid.uuid4().hex)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"ikejax-test-xla-{_run}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
