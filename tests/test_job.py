"""The one job path: any object with the `Method` protocol runs through it; the registry,
the generic `--set` override, and the installed commands."""

import dataclasses
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from ikejax.ike import configs
from ikejax.runs import folder, job, methods
import cli_runner


@dataclasses.dataclass(frozen=True)
class _Cfg:
  scale: int = 2
  gain: float = 1.0


class _Nearest:
  """A method in a dozen lines: nearest-neighbour upscaling times `gain`; diverges on 'bad'."""
  name = "nearest"
  presets = ("only",)
  default_preset = "only"
  batches = True  # groups of images share one fit (`group_key`)

  def config(self, preset, scale, overrides, kernel=None):
    return _Cfg(scale, **overrides)

  def settings(self, cfg):
    return dataclasses.asdict(cfg)

  def same_settings(self, record, cfg):
    return record.get("config") == self.settings(cfg)

  def iterations(self, cfg):
    return 1

  def prepare(self, cfg, j):
    j.cfg = cfg

  def group_key(self, j):
    return j.cfg  # all jobs of one config fit together

  def fit(self, jobs, seed, ctx):
    self.groups = getattr(self, "groups", []) + [len(jobs)]
    outs = []
    for j in jobs:
      if j.stem == "bad":
        outs.append(job.Outcome(error="a loss became NaN or inf at iteration 42", seconds=2.5))
        continue
      s = j.cfg.scale
      sr = np.clip(j.x.repeat(s, 0).repeat(s, 1) * j.cfg.gain, -1, 1)
      outs.append(job.Outcome(sr=sr, kernel=np.ones((3, 3)) / 9, label=self.name,
                              history=[{"iteration": 1, "loss": 0.5}], loss_keys=("loss",)))
    return outs


def _images(tmp_path, names):
  d = tmp_path / "in"
  d.mkdir()
  rng = np.random.default_rng(0)
  for n in names:
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(d / f"{n}.png")
  return d


def test_a_new_method_runs_through_the_folder_path(tmp_path, monkeypatch):
  m = _Nearest()
  monkeypatch.setitem(methods.REGISTRY, "nearest", m)
  d = _images(tmp_path, ["a", "bad", "c"])
  out = tmp_path / "out"
  jobs = folder.run_folder(str(d), str(out), m.config("only", 2, {}), method="nearest",
                           batch_size=2, progress=False)
  rows = {os.path.basename(j.path): j.row for j in jobs}
  assert rows["a.png"]["status"] == "done" and rows["c.png"]["status"] == "done"
  assert rows["bad.png"]["status"] == "failed" and rows["bad.png"]["seconds"] >= 2.5
  assert rows["bad.png"]["error"] == "a loss became NaN or inf at iteration 42"
  assert m.groups == [2, 1]  # batched by group_key, at most batch_size
  record = json.loads((out / "a_x2.json").read_text())
  assert record["method"] == "nearest" and record["config"] == {"scale": 2, "gain": 1.0}
  sr = np.asarray(Image.open(out / "a_x2.png"))
  lr = np.asarray(Image.open(d / "a.png"))
  np.testing.assert_array_equal(sr, lr.repeat(2, 0).repeat(2, 1))
  # A rerun reuses what is done, and redoes what another setting made.
  again = folder.run_folder(str(d), str(out), m.config("only", 2, {}), method="nearest",
                            progress=False)
  assert {os.path.basename(j.path): j.row["status"] for j in again}["a.png"] == "done earlier"
  other = folder.run_folder(str(d), str(out), m.config("only", 2, {"gain": 0.5}),
                            method="nearest", progress=False)
  row = {os.path.basename(j.path): j.row for j in other}["a.png"]
  assert row["status"] == "done" and "other settings" in row["error"]


def test_groups_keep_order_and_size():
  m = _Nearest()
  js = [job.Job(path=f"{i}.png", stem=str(i), outputs={}, cfg=_Cfg(2 + i % 2)) for i in range(5)]
  assert [[j.stem for j in g] for g in job.groups(m, js, 2)] == [["0", "2"], ["4"], ["1", "3"]]


def test_registry_names_every_cli_method():
  from ikejax.cli import main
  assert methods.NAMES == main.METHODS
  for name in methods.NAMES:
    m = methods.get(name)
    assert m.name == name and m.default_preset in m.presets
  with pytest.raises(ValueError, match="unknown method 'nope'"):
    methods.get("nope")


def test_set_overrides_any_field_by_its_type():
  cfg = methods.override(configs.TINY, ["iters=7", "lr=0.5", "augment=false", "squeeze=haar"])
  assert (cfg.iters, cfg.lr, cfg.augment, cfg.squeeze) == (7, 0.5, False, "haar")
  kg = methods.get("kernelgan").config("tiny", 2, {})
  assert methods.override(kg, ["kernelgan.iters=9"]).kernelgan.iters == 9
  for bad, needle in (("iters", "expected field=value"), ("nope=1", "no field 'nope'"),
                      ("iters=abc", "expected a int"), ("augment=maybe", "true or false")):
    with pytest.raises(ValueError, match=needle):
      methods.override(configs.TINY, [bad])
  with pytest.raises(ValueError, match="kernelgan.FIELD"):
    methods.override(kg, ["kernelgan=1"])


def test_set_flag_errors_are_one_line(tmp_path):
  r = cli_runner.run("ikejax", "--set", "nope=1", "-o", tmp_path)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1, r.stderr
  assert lines[0].startswith("error: --set nope: no field 'nope' in IKEConfig"), lines


@pytest.mark.parametrize("command", ["ikejax", "ikejax-degrade", "ikejax-metrics"])
def test_installed_commands(command):
  exe = shutil.which(command)
  assert exe, f"{command} is not on PATH: install with the README's pip command"
  r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"))
  # absl's --help exits 1 after printing this program's doc and flags.
  assert r.returncode == 1 and "ikejax" in r.stdout and "--scale" in r.stdout, r.stdout


def test_short_flags_take_a_file_a_folder_or_a_glob(tmp_path):
  d = _images(tmp_path, ["a", "b"])
  run = lambda *a: cli_runner.run("ikejax", "--method", "sharpen", "--noprogress", *a)
  r = run("-i", str(d / "a.png"), "-o", str(tmp_path / "one"), "-s", "3")
  assert r.returncode == 0 and (tmp_path / "one" / "a_x3.png").exists(), r.stderr
  r = run("-i", str(d), "-o", str(tmp_path / "dir"))
  assert r.returncode == 0 and "2 done" in r.stdout, r.stderr
  r = run("-i", str(d / "b*.png"), "-o", str(tmp_path / "glob"))
  assert r.returncode == 0 and "1 done" in r.stdout, r.stderr
  rows = json.loads((tmp_path / "glob" / "manifest.json").read_text())["images"]
  assert [os.path.basename(row["image"]) for row in rows] == ["b.png"]
