"""Shared by the benchmark scripts: run one measurement in a fresh process, save JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_worker(script: str, spec: str) -> dict:
  """Runs `script --worker=spec` with this process's flags; returns its `RESULT {json}` line.

  A fresh process per measurement: peak RSS is its own, no compile cache is
  shared, and process-wide JAX settings (the CPU device count) can differ.
  Exits with the worker's stderr tail if it fails.
  """
  args = [a for a in sys.argv[1:] if not a.startswith("--json")]
  proc = subprocess.run([sys.executable, script, f"--worker={spec}", *args],
                        capture_output=True, text=True, check=False)
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
  if proc.returncode or not line:
    sys.exit(f"error: worker {spec} failed:\n{proc.stderr[-2000:]}")
  return json.loads(line[0][len("RESULT "):])


def write_json(path: str, record: dict) -> None:
  """Writes `record` to `path` via a temporary file and a rename."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1)
  os.replace(path + ".tmp", path)
