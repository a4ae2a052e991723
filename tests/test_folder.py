"""Folder runs: resume after a kill, failures reported, manifest, checkpoints, CLI."""

import csv
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from ikejax.ike import configs
from ikejax.runs import folder
import cli_runner

CFG = configs.get_config("tiny", scale=2, iters=4).replace(log_every=2)


def _write(path, h, w, seed):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 3.0 + c) * np.cos(y / 4.0) for c in range(3)], -1) * 90 + 128
  Image.fromarray(np.clip(img + rng.randn(h, w, 3) * 3, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture()
def images(tmp_path):
  d = tmp_path / "in"
  d.mkdir()
  for i in range(3):  # One size: one inference compile (mixed sizes: tests/test_batch.py).
    _write(d / f"im{i}.png", 40, 48, i)
  (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  _write(d / "tiny.png", 9, 8, 5)  # below x2's 14 px minimum.
  (d / "notes.txt").write_text("not an image")
  return d


class Killed(Exception):
  pass


def _manifest(out):
  with open(out / "manifest.csv", newline="") as f:
    return {os.path.basename(r["image"]): r for r in csv.DictReader(f)}


def test_kill_then_resume_finishes_only_the_rest(images, tmp_path):
  out = tmp_path / "out"
  seen = []

  def kill_after_first(job):
    seen.append(job.path)
    if len(seen) == 1:
      raise Killed()

  with pytest.raises(Killed):
    folder.run_folder(str(images), str(out), CFG, seed=1, progress=False,
                      on_image_done=kill_after_first)
  first = _manifest(out)
  assert first["im0.png"]["status"] == "done"
  assert first["im1.png"]["status"] == "pending"
  assert first["corrupt.png"]["status"] == "failed"
  assert "not a recognised image" in first["corrupt.png"]["error"]
  assert "at least 14x14" in first["tiny.png"]["error"]
  assert "notes.txt" not in first
  assert not (out / "im1_x2.json").exists()
  assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
  done_before = (out / "im0_x2.json").stat().st_mtime_ns

  jobs = folder.run_folder(str(images), str(out), CFG, seed=1, progress=False,
                           on_image_done=lambda job: seen.append(job.path))
  rows = _manifest(out)
  assert [rows[f"im{i}.png"]["status"] for i in range(3)] == ["done earlier", "done", "done"]
  assert (out / "im0_x2.json").stat().st_mtime_ns == done_before  # not retrained
  assert len(seen) == 1 + 2
  for i in range(3):
    record = json.loads((out / f"im{i}_x2.json").read_text())
    assert record["seed"] == 1 and record["final_losses"]["iteration"] == 4
    assert float(rows[f"im{i}.png"]["csr_fwd"]) == pytest.approx(
        record["final_losses"]["csr_fwd"])
  summary = json.loads((out / "manifest.json").read_text())
  assert summary["counts"] == {"done": 2, "done earlier": 1, "failed": 2, "pending": 0}
  assert len(jobs) == 5


def test_checkpoint_resume_is_the_same_run(images, tmp_path):
  for name in ("corrupt.png", "tiny.png", "im2.png"):
    (images / name).unlink()
  cfg = CFG.replace(iters=6)
  whole = tmp_path / "whole"
  folder.run_folder(str(images), str(whole), cfg, batch_size=2, progress=False)

  out = tmp_path / "killed"
  save = folder.Checkpoints.save
  calls = []

  def save_then_die(self, bid, state, histories, paths):
    save(self, bid, state, histories, paths)
    calls.append(bid)
    if len(calls) == 2:  # after the checkpoint of iteration 4
      raise Killed()

  folder.Checkpoints.save = save_then_die
  try:
    with pytest.raises(Killed):
      folder.run_folder(str(images), str(out), cfg, batch_size=2, checkpoint_every=2,
                        progress=False)
  finally:
    folder.Checkpoints.save = save
  assert len(os.listdir(out / ".checkpoints")) == 2  # state and its metadata
  folder.run_folder(str(images), str(out), cfg, batch_size=2, checkpoint_every=2,
                    progress=False)
  assert not (out / ".checkpoints").exists()
  for i in range(2):
    a = np.asarray(Image.open(whole / f"im{i}_x2.png"), np.int16)
    b = np.asarray(Image.open(out / f"im{i}_x2.png"), np.int16)
    assert np.abs(a - b).max() <= 1
    hist = json.loads((out / f"im{i}_x2.json").read_text())["history"]
    assert [h["iteration"] for h in hist] == [2, 4, 6]


def test_scores_with_ground_truth_and_a_changed_config_is_redone(tmp_path):
  lr, gt = tmp_path / "lr", tmp_path / "gt"
  lr.mkdir()
  gt.mkdir()
  _write(gt / "a.png", 80, 96, 0)
  Image.open(gt / "a.png").resize((48, 40), Image.BICUBIC).save(lr / "a.png")
  _write(lr / "b.png", 40, 40, 1)  # no ground truth: trained, not scored
  out = tmp_path / "out"
  folder.run_folder(str(lr / "*.png"), str(out), CFG, gt_dir=str(gt), progress=False)
  rows = _manifest(out)
  assert float(rows["a.png"]["psnr_y"]) > 10 and float(rows["a.png"]["bicubic_psnr_y"]) > 10
  assert rows["b.png"]["status"] == "done" and rows["b.png"]["psnr_y"] == ""
  assert "no ground truth" in rows["b.png"]["error"]
  # No --batch: one image per local accelerator, 1 on CPU (results as before the default).
  expected = 1 if jax.default_backend() == "cpu" else jax.local_device_count()
  assert json.loads((out / "manifest.json").read_text())["run"]["batch"] == expected
  folder.run_folder(str(lr), str(out), CFG.replace(lambda_tv=2.0), progress=False)
  row = _manifest(out)["a.png"]
  assert row["status"] == "done" and "redone" in row["error"] and "other settings" in row["error"]
  assert json.loads((out / "a_x2.json").read_text())["config"]["lambda_tv"] == 2.0


def test_an_output_that_is_another_input_is_refused_before_training(tmp_path):
  fo = tmp_path / "fo"
  fo.mkdir()
  _write(fo / "a.png", 40, 48, 0)
  _write(fo / "a_x2.png", 40, 48, 1)  # a.png's SR would be written here
  before = (fo / "a_x2.png").read_bytes()
  with pytest.raises(folder.FolderError, match="overwrite an input"):
    folder.run_folder(str(fo), str(fo), CFG, progress=False)
  assert (fo / "a_x2.png").read_bytes() == before and not (fo / "manifest.json").exists()


def test_a_different_image_of_the_same_name_is_redone_and_rows_are_kept(tmp_path):
  one, two, out = tmp_path / "one", tmp_path / "two", tmp_path / "out"
  one.mkdir()
  two.mkdir()
  _write(one / "a.png", 40, 48, 0)
  _write(one / "b.png", 40, 48, 1)
  _write(two / "a.png", 40, 48, 2)  # same name, other pixels
  folder.run_folder(str(one), str(out), CFG, progress=False)
  first = json.loads((out / "a_x2.json").read_text())
  folder.run_folder(str(two), str(out), CFG, progress=False)
  rows = _manifest(out)
  assert rows["a.png"]["status"] == "done" and "another input file" in rows["a.png"]["error"]
  again = json.loads((out / "a_x2.json").read_text())
  assert again["input"]["sha256"] != first["input"]["sha256"]
  assert again["image"] == str(two / "a.png")
  assert rows["b.png"]["status"] == "done"  # the earlier run's row is kept
  folder.run_folder(str(two), str(out), CFG, progress=False)
  assert _manifest(out)["a.png"]["status"] == "done earlier"


def test_gif_images_are_run_and_skipped_files_listed(tmp_path):
  d = tmp_path / "in"
  d.mkdir()
  _write(d / "a.png", 40, 48, 0)
  Image.open(d / "a.png").save(d / "g.gif")
  (d / "notes.txt").write_text("x")
  paths, skipped = folder.list_inputs(str(d))
  assert [os.path.basename(p) for p in paths] == ["a.png", "g.gif"]
  assert [os.path.basename(s["file"]) for s in skipped] == ["notes.txt"]
  assert "extension" in skipped[0]["reason"]
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(folder.FolderError, match="cannot create output folder"):
    folder.run_folder(str(d), str(blocker / "out"), CFG, progress=False)


def test_process_share_and_listing(images):
  paths = folder.list_images(str(images))
  assert [os.path.basename(p) for p in paths] == [
      "corrupt.png", "im0.png", "im1.png", "im2.png", "tiny.png"]
  parts = [folder.share(paths, i, 2) for i in range(2)]
  assert sorted(parts[0] + parts[1]) == paths and not set(parts[0]) & set(parts[1])
  with pytest.raises(folder.FolderError, match="no files match"):
    folder.list_images(str(images / "*.jpg"))


def _cli(*args):
  return cli_runner.run("ikejax.main", *args, timeout=600)


def test_cli_refuses_bad_folder_flags(images, tmp_path):
  r = _cli("--images", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"), "--noprogress")
  assert r.returncode == 2 and r.stderr.startswith("error: no files match")
  r = _cli("--images", str(images), "--image", "x.png", "--noprogress")
  assert r.returncode == 2 and "give one input" in r.stderr
  r = _cli("--image", "x.png", "--gt", str(images), "--noprogress")
  assert r.returncode == 2 and "--gt needs a folder input" in r.stderr
  r = _cli("-i", str(images), "--hr", "x.png", "--noprogress")
  assert r.returncode == 2 and "not --hr" in r.stderr


def test_two_processes_split_the_folder(images, tmp_path):
  """`--distributed` over two local processes (jax.distributed on CPU): each takes its share,
  reports its failures and exits 1 only if it had one."""
  import socket
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  out = tmp_path / "out"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "ikejax.main", "--images", str(images), "--out", str(out),
       "--config", "tiny", "--iters", "2", "--noprogress", "--batch", "2", "--distributed",
       "--coordinator_address", f"localhost:{port}", "--num_processes", "2",
       "--process_id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=env) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  # Sorted: corrupt, im0, im1, im2, tiny -> process 0: corrupt, im1, tiny; 1: im0, im2.
  assert [p.returncode for p in procs] == [1, 0], [o[1][-2000:] for o in outs]
  assert "1 done, 0 done earlier, 2 failed" in outs[0][0]
  assert "failed: " in outs[0][1] and "Traceback" not in outs[0][1]
  assert "2 done, 0 done earlier, 0 failed" in outs[1][0]
  shares = []
  for i in range(2):
    manifest = json.loads((out / f"manifest.process{i}.json").read_text())
    assert manifest["run"]["process"] == [i, 2]
    shares.append(sorted(os.path.basename(r["image"]) for r in manifest["images"]))
  assert shares == [["corrupt.png", "im1.png", "tiny.png"], ["im0.png", "im2.png"]]
  assert all((out / f"im{i}_x2.json").exists() for i in range(3))
  record = json.loads((out / "im0_x2.json").read_text())
  assert record["batch"] == {"size": 2, "devices": 2}  # one CPU device per image
