"""IKE's learned kernel (impulse response of the downscaler), kernel scores and kernel files."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from ikejax.ike import configs, kernel
from ikejax.imaging import degrade, image_io, kernels
from ikejax.ike import model as model_lib

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "DIV2KRK")
needs_data = pytest.mark.skipif(not os.path.isdir(DATA),
                                reason="../shared/data/DIV2KRK is absent (benchmark images)")


def test_apply_kernel_is_correlate_then_subsample():
  rng = np.random.default_rng(0)
  x, k = rng.random((41, 30, 3)), rng.random((7, 9))
  want = np.stack([scipy.ndimage.correlate(x[..., c], k, mode="reflect") for c in range(3)],
                  -1)[::3, ::3]
  np.testing.assert_allclose(kernels.apply_kernel(x, k, 3), want, atol=1e-12)
  with pytest.raises(ValueError, match="odd"):
    kernels.apply_kernel(x, np.ones((4, 4)), 2)


@pytest.mark.parametrize("scale,crop", [(2, 32), (3, 36), (4, 32)])
def test_ike_kernel_reproduces_the_learned_downscaler(scale, crop):
  """With linear subnets, correlate(x, kernel)[::s] + X_LLR(0) is X_LLR(x), away from borders."""
  cfg = configs.get_config("tiny", scale=scale, crop=crop)
  mdl = model_lib.build_model(cfg)
  flow = model_lib.init_variables(mdl, jax.random.key(3), cfg.crop)["flow"]
  flow = jax.tree.map(lambda p: 3.0 * p, flow)  # far from the near-identity init
  full, (o, _) = kernel.impulse_response(flow, cfg)
  r = 30
  window = full[o - r:o + r + 1, o - r:o + r + 1]
  assert np.abs(window).sum() > 0.999 * np.abs(full).sum()
  x = np.random.default_rng(1).uniform(-1, 1, (40 * scale, 40 * scale, 3)).astype(np.float32)
  llr = lambda im: np.asarray(mdl.encode(flow, jnp.asarray(im))[0])
  want = llr(x) - llr(np.zeros_like(x))
  got = kernels.apply_kernel(x, window, scale)
  b = r // scale + 2
  np.testing.assert_allclose(got[b:-b, b:-b], want[b:-b, b:-b], atol=2e-5)
  # Bicubic residual: a flat image passes unchanged, so the kernel sums to 1.
  k, info = kernel.ike_kernel(flow, cfg)
  assert k.shape == (kernels.DEFAULT_SIZE[scale],) * 2
  assert abs(full.sum() - 1) < 1e-5 and info["linear"] and 0.9 < info["mass_inside"] <= 1


def test_moments_of_a_gaussian():
  k = degrade.gaussian_kernel(31, (4.0, 1.0), 0.3)
  m = kernels.moments(k)
  np.testing.assert_allclose(m["sigmas"], [2.0, 1.0], atol=0.02)
  np.testing.assert_allclose(m["centre"], [15, 15], atol=1e-9)


def test_moments_major_axis_as_drawn():
  def off(k, want):  # distance of the axis from `want` on the 180-degree circle
    d = (kernels.moments(k)["major_axis_deg"] - want) % 180
    return min(d, 180 - d)
  g = lambda s: np.exp(-0.5 * (np.arange(15) - 7.0) ** 2 / s ** 2)
  along_x = np.outer(g(1.0), g(3.0))
  rising = np.zeros((15, 15))
  for t in range(-5, 6):  # up and to the right on screen: row falls as col grows
    rising[7 - t, 7 + t] = 1.0
  for k, want in [(along_x, 0), (along_x.T, 90), (rising, 45), (rising[:, ::-1], 135)]:
    assert off(k, want) < 1e-6


def test_compare_kernels_aligns_and_scores():
  truth = degrade.gaussian_kernel(11, (1.2, 0.8), 0.5)
  op = np.pad(degrade.kernel_shift(truth, 2), 5)  # the exact operator, in a 21 window
  same = kernels.compare_kernels(op, truth, 2)
  assert same["l1"] < 1e-9 and same["shift"] == [0, 0] and same["kernel_psnr"] > 100
  moved = kernels.compare_kernels(np.roll(op, (1, -2), (0, 1)), truth, 2)
  assert moved["shift"] == [-1, 2] and moved["l1"] < 1e-9
  wide_op = np.pad(degrade.kernel_shift(np.pad(degrade.gaussian_kernel(11, (4.0, 4.0), 0), 3), 2), 2)
  wide = kernels.compare_kernels(wide_op, truth, 2)
  assert wide["l1"] > 0.3 and wide["kernel_psnr"] < same["kernel_psnr"]
  assert wide["shift"] == [0, 0]  # a wide estimate cannot lower its error by moving mass out
  assert wide["sigmas_estimate"][0] > wide["sigmas_truth"][0]


def test_save_kernel_round_trips_and_protects_inputs(tmp_path):
  k = degrade.gaussian_kernel(13, (1.0, 2.0), 0.1)
  paths = kernels.kernel_paths(str(tmp_path / "im_x2"))
  kernels.save_kernel(paths, k)
  np.testing.assert_array_equal(image_io.load_kernel(paths["mat"]), k)
  np.testing.assert_array_equal(image_io.load_kernel(paths["npy"]), k)
  assert image_io.read_image(paths["png"]).pixels.shape[2] == 3
  before = open(paths["npy"], "rb").read()
  with pytest.raises(image_io.ImageError, match="overwrite"):
    kernels.save_kernel(paths, 2 * k, protect=[paths["npy"]])
  assert open(paths["npy"], "rb").read() == before


@needs_data
def test_div2krk_kernel_regenerates_its_lr():
  """The ground truth, shifted to the operator convention, explains the stored LR (~51 dB)."""
  hr = image_io.read_image(os.path.join(DATA, "gt", "im_2.png")).pixels
  lr = image_io.read_image(os.path.join(DATA, "lr_x2", "im_2.png")).pixels
  k = image_io.load_kernel(os.path.join(DATA, "gt_k_x2", "kernel_2.mat"))
  assert kernels.regenerated_lr_psnr(hr, lr, degrade.kernel_shift(k, 2), 2) > 50
  assert kernels.regenerated_lr_psnr(hr, lr, k, 2) < 45  # unshifted: half a pixel off


def test_shape_of_a_blur_and_of_a_sharpener():
  box = np.full((3, 3), 1 / 9)
  assert kernels.shape(box) == pytest.approx({"l1_norm": 1.0, "negative_mass": 0.0})
  sharpen = 2 * np.pad([[1.0]], 1) - box  # 2*delta - box: sums to 1, centre 17/9, 8 taps -1/9
  assert kernels.shape(sharpen) == pytest.approx({"l1_norm": 25 / 9, "negative_mass": 8 / 25})
