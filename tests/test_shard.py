"""`--shard i/N`: independent processes each take a share of a folder; `--merge` joins their
manifests."""

import json

import numpy as np
from PIL import Image

import cli_runner


def _folder(tmp_path, n):
  d = tmp_path / "in"
  d.mkdir()
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(d / f"im{i}.png")
  return d


def test_shards_then_merge(tmp_path):
  d, out = _folder(tmp_path, 3), tmp_path / "out"
  run = lambda *a: cli_runner.run("ikejax", "--method", "sharpen", "--noprogress", "-o", out, *a)
  for i in (0, 1):
    r = run("-i", d, "--shard", f"{i}/2")
    assert r.returncode == 0, r.stderr
  shares = [json.loads((out / f"manifest.process{i}.json").read_text()) for i in (0, 1)]
  assert [sorted(r["image"].rsplit("/", 1)[1] for r in m["images"]) for m in shares] == [
      ["im0.png", "im2.png"], ["im1.png"]]
  r = cli_runner.run("ikejax", "--merge", "-o", out)
  assert r.returncode == 0 and "merged: 3 done, 0 failed" in r.stdout, (r.stdout, r.stderr)
  merged = json.loads((out / "manifest.json").read_text())
  assert [r["status"] for r in merged["images"]] == ["done"] * 3
  assert merged["run"]["missing_shares"] == [] and len(merged["run"]["merged_from"]) == 2
  assert (out / "manifest.csv").read_text().count("\n") == 4


def test_merge_reports_a_missing_share(tmp_path):
  d, out = _folder(tmp_path, 2), tmp_path / "out"
  r = cli_runner.run("ikejax", "--method", "sharpen", "--noprogress", "-i", d, "-o", out,
                     "--shard", "1/3")
  assert r.returncode == 0, r.stderr
  r = cli_runner.run("ikejax", "--merge", "-o", out)
  assert r.returncode == 0 and "shares [0, 2] have no manifest yet" in r.stdout, r.stdout


def test_bad_shard_and_merge_flags_are_one_line(tmp_path):
  d = _folder(tmp_path, 1)
  for args, needle in ((("-i", d, "--shard", "2/2"), "0 <= i < N"),
                       (("-i", d, "--shard", "x"), "i/N"),
                       (("-i", d / "im0.png", "--shard", "0/2"), "needs a folder input"),
                       (("-i", d, "--shard", "0/2", "--distributed", "--method", "ike"),
                        "does not go with"),
                       (("--merge",), "no manifest.process*.json"),
                       (("--merge", "-i", d), "takes only -o")):
    r = cli_runner.run("ikejax", "--method", "sharpen", "-o", tmp_path / "o", *args)
    assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
