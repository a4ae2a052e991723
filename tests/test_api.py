"""The Python API: an array or a path in, arrays and a record out, no flags registered."""

import subprocess
import sys

import numpy as np
import pytest

import ikejax
from ikejax.imaging import image_io


def test_importing_ikejax_registers_no_flag_and_loads_no_jax():
  code = ("import sys, ikejax; from absl import flags; "
          "assert 'jax' not in sys.modules, 'jax loaded'; "
          "assert 'image' not in flags.FLAGS, 'flags registered'; "
          "assert 'super_resolve' in dir(ikejax); "
          "import ikejax.main; assert 'image' not in flags.FLAGS, 'main registered flags'; "
          "flags.DEFINE_string('image', None, 'another program may define it')")
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr


def test_super_resolve_an_array_and_a_path(tmp_path):
  lr, _, _ = image_io.default_image(2)
  lr = lr[:48, :56]
  out = ikejax.super_resolve(lr, scale=2, preset="tiny", iters=2)
  assert out.sr.shape == (96, 112, 3) and out.sr.dtype == np.uint8
  assert out.llr.shape == (24, 28, 3) and out.kernel.ndim == 2
  assert out.record["config"]["iters"] == 2 and out.record["preset"] == "tiny"
  path = tmp_path / "lr.png"
  image_io.save_image(path, lr)
  again = ikejax.super_resolve(str(path), scale=2, preset="tiny", iters=2)
  np.testing.assert_array_equal(again.sr, out.sr)  # same seed, same pixels
  sharp = ikejax.super_resolve(lr, scale=2, method="sharpen")
  assert sharp.sr.shape == (96, 112, 3) and sharp.kernel.shape == (21, 21)  # bicubic, assumed
  assert sharp.record["kernel"]["source"].startswith("assumed")


def test_api_refuses_bad_input():
  with pytest.raises(ValueError, match="uint8 or uint16"):
    ikejax.super_resolve(np.zeros((40, 40, 3), np.float32))
  with pytest.raises(ValueError, match="unknown method"):
    ikejax.super_resolve(np.zeros((40, 40, 3), np.uint8), method="nope")
  with pytest.raises(ValueError, match="unknown config"):
    ikejax.super_resolve(np.zeros((40, 40, 3), np.uint8), preset="nope")


def test_estimate_kernel_of_an_array():
  lr, _, _ = image_io.default_image(2)
  k, info = ikejax.estimate_kernel(lr, 2)
  assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-6 and len(info["sigmas"]) == 2
