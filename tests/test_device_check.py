"""`benchmarks/device_check.py` in CI size: it runs on CPU and its checks hold."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import device_check  # noqa: E402


def test_device_check_runs_and_its_checks_hold(tmp_path):
  out = device_check.main(["--config", "tiny", "--batches", "2", "--steps", "1",
                           "--size", "32", "--json", str(tmp_path / "d.json")])
  assert out["inverse_max_abs_error"] < 1e-5
  assert out["batched_vs_single_rel"] < 1e-3
  assert [r["B"] for r in out["rows"]] == [2]
  assert all(np.isfinite(r["images_per_hour"]) and r["images_per_hour"] > 0 for r in out["rows"])
  assert (tmp_path / "d.json").exists()
