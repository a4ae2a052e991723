"""End-to-end CLI runs with the tiny config, and every bad input's error."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from ikejax.cli import main as cli
import cli_runner


def _run(*args, timeout=300):
  return cli_runner.run("ikejax.main", *args, timeout=timeout)


def _smooth_image(h, w, seed=0):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 3.0 + c) * np.cos(y / 4.0) for c in range(3)], -1) * 90 + 128
  return np.clip(img + rng.randn(h, w, 3) * 3, 0, 255).astype(np.uint8)


def test_cli_end_to_end_odd_size_x3(tmp_path):
  path = tmp_path / "odd.png"
  Image.fromarray(_smooth_image(31, 29)).save(path)
  before = path.read_bytes()
  out = tmp_path / "out"
  r = _run("--image", str(path), "--scale", "3", "--config", "tiny", "--iters", "2",
           "--out", str(out), "--noprogress")
  assert r.returncode == 0, r.stderr
  sr = np.asarray(Image.open(out / "odd_x3.png"))
  assert sr.shape == (93, 87, 3)
  assert np.asarray(Image.open(out / "odd_x3_llr.png")).shape == (10, 9, 3)
  for suffix in ("_compare.png", "_losses.png"):
    assert (out / f"odd_x3{suffix}").stat().st_size > 0
  record = json.loads((out / "odd_x3.json").read_text())
  assert record["config"]["scale"] == 3 and record["seed"] == 0
  assert set(record["timings"]) >= {"compile_s", "train_s", "inference_s"}
  assert "csr_fwd" in record["final_losses"] and "jax" in record["versions"]
  assert record["numerics"] == {"matmul_precision": "highest",
                                "cpu_convs": record["device"]["platform"] == "cpu"}
  assert "warning" in r.stderr  # 31x29 is smaller than the tiny config's 32 px crop.
  assert path.read_bytes() == before
  assert not [p for p in os.listdir(out) if p.startswith(".") or p.endswith(".tmp")]


def test_run_small_16bit_gray_image(tmp_path):
  px = (_smooth_image(24, 28)[..., 0].astype(np.uint16) * 257)
  path = tmp_path / "g16.png"
  Image.fromarray(px).save(path)
  record = cli.run(str(path), str(tmp_path / "o"), "tiny", 0, scale=2,
                   overrides={"iters": 2}, progress=False)
  assert "24 px" in record["crop_warning"]
  out = Image.open(tmp_path / "o" / "g16_x2.png")
  assert out.mode in ("I;16", "I") and out.size == (56, 48)


def test_conv_and_precision_flags_reach_the_run_and_its_record(tmp_path):
  path = tmp_path / "im.png"
  Image.fromarray(_smooth_image(40, 40)).save(path)
  r = _run("-i", str(path), "--config", "tiny", "--iters", "2", "-o", str(tmp_path / "o"),
           "--noprogress", "--conv", "plain", "--precision", "fast")
  assert r.returncode == 0, r.stderr
  record = json.loads((tmp_path / "o" / "im_x2.json").read_text())
  assert record["numerics"] == {"matmul_precision": "default", "cpu_convs": False}


def test_a_bad_ikejax_conv_variable_is_one_error_line(tmp_path):
  path = tmp_path / "im.png"
  Image.fromarray(_smooth_image(40, 40)).save(path)
  r = cli_runner.run("ikejax.main", "-i", str(path), "--config", "tiny", "-o", str(tmp_path),
                     "--noprogress", env={**os.environ, "IKEJAX_CONV": "fastest"})
  assert r.returncode == 2 and r.stderr.startswith("error: IKEJAX_CONV: "), r.stderr
  assert "Traceback" not in r.stderr


def _write_truncated_png(path):
  full = path.with_suffix(".full.png")
  Image.fromarray(_smooth_image(64, 64)).save(full)
  path.write_bytes(full.read_bytes()[:300])


@pytest.mark.parametrize("case,needle", [
    ("missing", "not found"),
    ("not_image", "not a recognised image"),
    ("truncated", "truncated"),
    ("scale", "unsupported scale 5"),
    ("too_small", "at least 14x14"),
])
def test_cli_bad_inputs(tmp_path, case, needle):
  path = tmp_path / "in.png"
  args = ["--config", "tiny", "--out", str(tmp_path / "o"), "--noprogress"]
  if case == "not_image":
    path.write_text("hello, I am text")
  elif case == "truncated":
    _write_truncated_png(path)
  elif case == "scale":
    Image.fromarray(_smooth_image(40, 40)).save(path)
    args += ["--scale", "5"]
  elif case == "too_small":
    Image.fromarray(_smooth_image(13, 40)).save(path)
  r = _run("--image", str(path), *args)
  assert r.returncode == 2, (r.returncode, r.stderr)
  assert "Traceback" not in r.stderr
  lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0].lower(), r.stderr


def test_cli_refuses_to_overwrite_an_input(tmp_path):
  img = tmp_path / "im.png"
  Image.fromarray(_smooth_image(40, 40)).save(img)
  hr = tmp_path / "im_x2.png"   # Exactly where the SR output would go.
  Image.fromarray(_smooth_image(80, 80)).save(hr)
  before = hr.read_bytes()
  r = _run("--image", str(img), "--hr", str(hr), "--out", str(tmp_path), "--config", "tiny")
  assert r.returncode == 2 and "overwrite" in r.stderr
  assert hr.read_bytes() == before


def test_cli_rejects_a_mismatched_hr_before_training(tmp_path):
  img, hr = tmp_path / "a.png", tmp_path / "hr.png"
  Image.fromarray(_smooth_image(40, 40)).save(img)
  Image.fromarray(_smooth_image(50, 80)).save(hr)
  r = _run("--image", str(img), "--hr", str(hr), "--out", str(tmp_path / "o"), "--config", "tiny")
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert r.stderr.strip().splitlines()[-1].startswith("error: --hr")
  assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, needle", [(("--scale", "abc"), "scale"),
                                          (("--bogus", "1"), "bogus"),
                                          (("--conv", "fastest"), "conv")])
def test_a_bad_or_unknown_flag_is_one_error_line_and_exit_2(args, needle):
  r = _run(*args)
  assert r.returncode == 2, (r.returncode, r.stderr)
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
