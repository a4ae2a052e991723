"""DualSR: the networks' shapes, the fixed bilinear x2, the interpolation mask, the
schedules, a tiny fit, kernel recovery and the CLI job path."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from ikejax import loop
from ikejax.baselines import dualsr as ds
from ikejax.baselines import kernelgan as kg
from ikejax.cli import main
from ikejax.imaging import degrade, image_io, kernels
from ikejax.nets import PatchDiscriminator
from ikejax.runs import methods

TINY = ds.PRESETS["tiny"]


def test_networks_shapes_and_g_dn_kernel():
  state = loop.run_once(ds.create_state, jax.random.key(0), cfg=TINY)
  g_up, g_dn, disc = ds._models(TINY)
  x = jnp.asarray(np.random.default_rng(0).random((2, 16, 20, 3)), jnp.float32)
  assert g_up.apply({"params": state.up}, x).shape == (2, 32, 40, 3)
  y = g_dn.apply({"params": state.dn}, jnp.zeros((3, 32, 34, 1)))
  assert y.shape == (3, 10, 11, 1)                      # (32 - 13) // 2 + 1, (34 - 13) // 2 + 1
  d = disc.apply(state.d, jnp.asarray(np.random.default_rng(5).random((2, 20, 20, 3)),
                                     jnp.float32), update_stats=False)
  assert d.shape == (2, 14, 14, 1) and 0 < float(d.min()) and float(d.max()) < 1
  # G_DN (stride 2 on its 3x3 layer) is one 13x13 stride-2 correlation with its kernel.
  hr = jnp.asarray(np.random.default_rng(1).random((2, 40, 44, 3)), jnp.float32)
  layered = ds.downscale(g_dn, state.dn, hr, 13, composed=False)
  composed = ds.downscale(g_dn, state.dn, hr, 13, composed=True)
  assert layered.shape == (2, 14, 16, 3)
  np.testing.assert_allclose(composed, layered, rtol=1e-4, atol=1e-6)
  k = np.asarray(kg.generator_kernel(g_dn, state.dn, 13))
  want = kernels.apply_kernel(np.asarray(hr[0]), k, 2)[3:3 + 14, 3:3 + 16]
  np.testing.assert_allclose(layered[0], want, rtol=1e-3, atol=1e-5)
  # Init N(1/n, 1/n): each layer passes DC at ~1, so the kernel sums to ~1.
  w0 = np.asarray(state.dn["conv0"]["kernel"])
  assert abs(w0.mean() * 49 - 1) < 0.3 and abs(k.sum() - 1) < 0.5


def test_d_is_kernelgans_d_with_batch_wide_batchnorm():
  _, _, disc = ds._models(TINY)
  v = disc.init(jax.random.key(0), jnp.zeros((1, 20, 20, 3)), update_stats=True)
  x = jnp.asarray(np.random.default_rng(2).random((2, 20, 20, 3)), jnp.float32)
  ref = PatchDiscriminator(width=TINY.d_width)
  one = disc.apply(v, x[:1], update_stats=False)
  np.testing.assert_allclose(one, ref.apply(v, x[:1], update_stats=False), rtol=1e-5, atol=1e-6)
  # A batch of 2 shares its BatchNorm statistics (torch train mode), unlike per-sample BN.
  pooled = disc.apply(v, x, update_stats=False)
  assert float(jnp.abs(pooled - ref.apply(v, x, update_stats=False)).max()) > 1e-4
  # The state's D starts from PyTorch's default conv init, U(+-1/sqrt(fan_in)) (what the
  # official D trains from), as drawn: not divided by its sigma as flax's init stores it.
  d = loop.run_once(ds.create_state, jax.random.key(0), cfg=TINY).d
  for name, fan_in in (("conv0", 147), ("conv1", TINY.d_width)):
    w = np.abs(np.asarray(d["params"][name]["kernel"]))
    assert 0.8 / np.sqrt(fan_in) < w.max() <= 1 / np.sqrt(fan_in), name
  assert np.abs(v["params"]["conv0"]["kernel"]).max() > 1 / np.sqrt(147)  # flax's, normalised


def test_bilinear_up2_is_half_pixel_bilinear_with_clamped_borders():
  x = np.random.default_rng(3).random((2, 5, 7, 3))
  got = np.asarray(ds.bilinear_up2(jnp.asarray(x, jnp.float32)))

  def axis_weights(n):  # [2n, n]: output y samples input (y + 0.5) / 2 - 0.5, clamped
    m = np.zeros((2 * n, n))
    for y in range(2 * n):
      p = (y + 0.5) / 2 - 0.5
      i0 = int(np.floor(p))
      f = p - i0
      m[y, min(max(i0, 0), n - 1)] += 1 - f
      m[y, min(max(i0 + 1, 0), n - 1)] += f
    return m

  want = np.einsum("yi,xj,nijc->nyxc", axis_weights(5), axis_weights(7), x)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_interp_mask_is_kornias_per_channel_sobel():
  x = np.random.default_rng(4).random((1, 9, 8, 3)) * 0.4
  got = np.asarray(ds.interp_mask(jnp.asarray(x, jnp.float32)))
  kx = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
  for c in range(3):
    gx = scipy.ndimage.correlate(x[0, ..., c], kx, mode="constant")
    gy = scipy.ndimage.correlate(x[0, ..., c], kx.T, mode="constant")
    np.testing.assert_allclose(got[0, ..., c], 1 - np.clip(np.hypot(gx, gy), 0, 1), atol=1e-5)
  assert got.min() == 0.0 and got.max() <= 1.0  # strong edges are masked out entirely


def test_learning_rates_follow_the_official_learner():
  cfg = ds.DualSRConfig(lr_d=1e-4)
  got = [tuple(float(v) for v in ds.learning_rates(cfg, jnp.int32(t)))
         for t in (0, 749, 750, 751, 1500, 1501, 2999)]
  want = [(1e-3, 2e-4, 1e-4), (1e-3, 2e-4, 1e-4), (5e-4, 2e-4, 1e-4), (5e-4, 5e-5, 2.5e-5),
          (2.5e-4, 5e-5, 2.5e-5), (2.5e-4, 1.25e-5, 6.25e-6), (1.25e-4, 3.125e-6, 1.5625e-6)]
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_tiny_fit_is_finite():
  lr = image_io.default_image(2)[0] / 255.0  # the CLI test's image: one compile for both
  res = ds.fit(lr, TINY, jax.random.key(1))
  assert [h["iteration"] for h in res.history] == [2, 4, 6]
  assert all(np.isfinite(v) for h in res.history for v in h.values())
  assert res.history[0]["lambda_bicubic"] == 5.0 and res.history[0]["lr_up"] == pytest.approx(1e-3)
  assert res.sr01.shape == (512, 512, 3) and 0 <= res.sr01.min() and res.sr01.max() <= 1
  assert res.kernel_x2.shape == (13, 13) and np.isfinite(res.kernel_x2).all()
  with pytest.raises(ValueError, match="at least 32x32"):
    ds.fit(lr[:20], TINY, jax.random.key(1))


def _dead_leaves(n: int, seed: int, count: int = 4000) -> np.ndarray:
  """`[n, n, 3]` in [0, 1]: occluding disks, radii ~ r^-3 (scale-invariant, isotropic)."""
  rng = np.random.default_rng(seed)
  img = np.zeros((n, n, 3))
  rmin, rmax = 2.0, n / 6
  for _ in range(count):
    r = (rmin ** -2 + rng.random() * (rmax ** -2 - rmin ** -2)) ** -0.5
    cy, cx = rng.random(2) * n
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, n)
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, n)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    img[y0:y1, x0:x1][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.random(3)
  return img


def _axis_variances(k):
  k = np.clip(k, 0, None)
  k = k / k.sum()
  r, c = np.indices(k.shape)
  return float((k * (r - (k * r).sum()) ** 2).sum()), float((k * (c - (k * c).sum()) ** 2).sum())


def test_g_dn_follows_a_known_anisotropic_blur():
  """A dead-leaves image blurred by a Gaussian of sigma 2.2 px along the columns and 0.6 px
  along the rows, then the same blur turned a quarter, each subsampled x2; DualSR with small
  nets (G_UP 8 x 3, G_DN 8, D 32, 64 px HR crops), 800 iterations, the learner's constraint
  schedule 2.5x sooner, seed 0, XLA's optimisations on.

  Like KernelGAN, DualSR's estimate is wider and rounder than the truth (column / row
  variance 13:1), and one run is chaotic: one orientation alone is a weak test (at 400
  iterations, ratios of 0.94-1.28 over seeds 0-2). The test compares the two orientations.
  Outside the suite, seeds 0-2, column / row ratio along / across the blur: 0.91 / 0.59,
  1.50 / 0.59, 1.36 / 0.91 (quotients 1.5-2.5) with XLA's optimisations, 1.53 / 0.61,
  1.61 / 0.71, 1.20 / 0.54 (2.2-2.5) without them. The test asks a quotient above 1.3: a
  transposed estimate gives below 1, a blur-blind one about 1. Also: a major sigma within a
  factor 2 of the truth's, sum about 1.
  """
  cfg = ds.PRESETS["paper"].replace(iters=800, log_every=800, crop=64, up_width=8, up_depth=3,
                                    dn_width=8, d_width=32, lambda_update_every=160)
  img = _dead_leaves(256, 0)
  ratio = {}
  # XLA's optimisations (off suite-wide for compile speed) halve this test's time.
  optimise = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    for theta in (0.0, np.pi / 2):
      truth = degrade.gaussian_kernel(13, (2.2 ** 2, 0.6 ** 2), theta)
      k = ds.fit(degrade.blur_subsample(img, truth, 2), cfg, jax.random.key(0)).kernel_x2
      rows, cols = _axis_variances(k)
      ratio[theta] = cols / rows
      along = kernels.compare_kernels(k, truth, 2)
      major, truth_major = along["sigmas_estimate"][0], along["sigmas_truth"][0]
      assert truth_major / 2 < major < 2 * truth_major, (theta, along)
      assert abs(k.sum() - 1) < 0.1, (theta, k.sum())
  finally:
    jax.config.update("jax_disable_most_optimizations", optimise)
  assert ratio[0.0] / ratio[np.pi / 2] > 1.3, ratio


def test_cli_job_path_writes_the_sr_and_the_kernel(tmp_path):
  record = main.run(None, str(tmp_path), "tiny", method="dualsr", scale=2, progress=False)
  assert record["method"] == "dualsr" and record["output_shape"] == [512, 512, 3]
  assert record["config"]["dualsr"]["iters"] == 6
  for key in ("sr", "compare", "losses", "kernel_npy", "kernel_mat", "kernel_png", "record"):
    assert os.path.isfile(record["outputs"][key]), key
  assert "llr" not in record["outputs"]
  assert np.load(record["outputs"]["kernel_npy"]).shape == (13, 13)
  assert json.load(open(record["outputs"]["record"]))["scores"]["ikejax"]["psnr_y"] > 10
  m = methods.get("dualsr")
  for kwargs, needle in (({"scale": 4}, "x2 only"), ({"kernel": "k.mat"}, "blind"),
                         ({"preset": "nope"}, "unknown dualsr config")):
    args = {"preset": "tiny", "scale": 2, **kwargs}
    with pytest.raises(ValueError, match=needle):
      m.config(args.pop("preset"), args.pop("scale"), {}, **args)
  assert m.config("tiny", 2, {"iters": 3}).dualsr.iters == 3
  with pytest.raises(ValueError, match="does not apply"):
    m.config("tiny", 2, {"crop": 64})
