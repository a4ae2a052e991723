"""KernelGAN: G's kernel, constraints, the learner's schedule, training and kernel recovery."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax.imaging import degrade, image_io, kernels
from ikejax.baselines import kernelgan as kg


def test_generator_kernel_is_the_generator():
  cfg = kg.PRESETS["tiny"]
  gen, _ = kg._models(cfg)
  g = kg.create_state(jax.random.key(0), cfg).g
  g = jax.tree.map(lambda p: 10 * p, g)
  k = np.asarray(kg.generator_kernel(gen, g, cfg.kernel_size), np.float64)
  assert k.shape == (13, 13)
  x = np.random.default_rng(0).random((40, 44, 3)).astype(np.float32)
  y = np.asarray(kg._from_colour_batch(gen.apply({"params": g}, kg._colour_batch(jnp.asarray(x)))))
  assert y.shape == (14, 16, 3)
  # G(x)[i] = sum_u k[u] x[2i + u]: the operator-window output shifted by 13 // 2 / 2 = 3.
  want = kernels.apply_kernel(x, k, 2)[3:3 + 14, 3:3 + 16]
  np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
  composed = np.asarray(kg.downscale(gen, g, jnp.asarray(x), 13, composed=True))
  np.testing.assert_allclose(composed, y, rtol=1e-4, atol=1e-6 * np.abs(want).max())
  np.testing.assert_allclose(kg.downscale(gen, g, jnp.asarray(x), 13, composed=False), y)


def test_constraints_vanish_on_an_ideal_kernel():
  k = np.pad(degrade.kernel_shift(degrade.gaussian_kernel(9, (1.0, 1.0), 0.0), 2), 2)
  k /= k.sum()
  c = {n: float(v) for n, v in kg.kernel_constraints(jnp.asarray(k, jnp.float32), 13).items()}
  assert c["sum2one"] < 1e-6 and c["centralized"] < 1e-3 and c["boundaries"] < 1e-3
  mask = kg.penalty_mask(13)
  assert mask[3:-3, 3:-3].max() == 0 and mask[0, 0] > 0 and mask[0, 6] > 0
  spread = np.full((13, 13), 1 / 169)
  assert float(kg.kernel_constraints(jnp.asarray(spread, jnp.float32), 13)["boundaries"]) > 0.01
  assert np.isfinite(jax.grad(lambda k: kg.kernel_constraints(k, 13)["sparse"])(
      jnp.zeros((13, 13))).sum())


def test_learner_schedule_matches_the_official_one():
  cfg = kg.KernelGANConfig()
  lam = kg.create_state(jax.random.key(0), kg.PRESETS["tiny"]).lam
  seen = {}
  for t in range(1001):
    lam = kg._learner(lam, jnp.int32(t), jnp.float32(0.1), cfg)
    seen[t] = (float(lam["bicubic"]), bool(lam["similar"]), float(lam["sparse"]))
  assert not seen[2][1] and seen[3][1]                      # 3 iterations below 0.4
  assert seen[199][0] == 5.0 and seen[200][0] == pytest.approx(0.05)
  assert seen[400][0] == pytest.approx(5e-4) and seen[399][2] == 0 and seen[400][2] == 5.0
  assert seen[600][0] == pytest.approx(5e-6) and seen[1000][0] == pytest.approx(5e-6)
  lam2 = kg.create_state(jax.random.key(0), kg.PRESETS["tiny"]).lam
  for t in range(1, 300):  # a loss above the threshold resets the count
    lam2 = kg._learner(lam2, jnp.int32(t), jnp.float32(0.1 if t % 3 else 0.5), cfg)
  assert not bool(lam2["similar"])
  lrs = [float(kg._lr(cfg, jnp.int32(t))) for t in (0, 750, 751, 1501)]
  np.testing.assert_allclose(lrs, [2e-4, 2e-4, 2e-5, 2e-6], rtol=1e-5)


def test_tiny_fit_is_finite_and_gives_normalised_kernels():
  img = np.random.default_rng(0).random((60, 70, 3))
  res = kg.fit(img, kg.PRESETS["tiny"], jax.random.key(1))
  assert [h["iteration"] for h in res.history] == [2, 4, 6]
  assert all(np.isfinite(v) for h in res.history for v in h.values())
  k2, k4 = kg.final_kernels(res.kernel_x2, 2), kg.final_kernels(res.kernel_x2, 4)
  assert k2.shape == (17, 17) and k4.shape == (33, 33)
  assert abs(k2.sum() - 1) < 1e-9 and abs(k4.sum() - 1) < 1e-9 and k2.min() >= 0
  with pytest.raises(ValueError, match="at least"):
    kg.fit(img[:20], kg.PRESETS["tiny"], jax.random.key(1))


def _axis_variances(k):
  k = np.clip(k, 0, None)
  k = k / k.sum()
  r, c = np.indices(k.shape)
  return float((k * (r - (k * r).sum()) ** 2).sum()), float((k * (c - (k * c).sum()) ** 2).sum())


def test_recovers_the_orientation_of_a_known_gaussian():
  """Known-kernel recovery: an anisotropic Gaussian (sigma 2.2 x 0.6 px) along the columns,
  then along the rows; the estimate's column/row spread ratio is larger for the first.

  The embedded photo blurred and subsampled x2, the paper config at 500 iterations, seeds
  0 and 1. One GAN run on one image is chaotic: the same seed gave ratio pairs (along /
  across, truth 13.4 / 0.07) of 3.5 / 0.80 with XLA's optimisations and 1.4 / 0.76 without
  them on one machine (1000 iterations), and 0.72 / 0.88 in one CI run, so a single run
  cannot carry the test. Seeds 0-2 outside the suite: 4.0 / 0.69, 2.9 / 1.08, 2.4 / 0.52 at
  500 iterations (the gain below: 4.0 over seeds 0-1, 3.6 over 1-2), 3.5 / 0.80, 3.2 / 0.72,
  2.9 / 0.52 at 1000; the official PyTorch code on the same images gives 2.0 / 0.46 and
  1.3 / 0.47 (3000 iterations, seeds 0, 1):
  KernelGAN follows the axis but pulls every estimate towards ~1.3 px
  (experiments/kernelgan_orientation.py, docs/deviations.md). The test asks the geometric
  mean over the two seeds of (ratio along / ratio across) to exceed 1.5: a transposed
  estimate gives below 1, a blur-blind one about 1.
  """
  _, hr, _ = image_io.default_image(2)
  cfg = kg.PRESETS["paper"].replace(iters=500, log_every=500)
  # XLA's optimisations (off suite-wide for compile speed) pay for 2000 iterations.
  optimise = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    pairs = [_orientation_ratios(hr, cfg, seed) for seed in (0, 1)]
  finally:
    jax.config.update("jax_disable_most_optimizations", optimise)
  gain = np.exp(np.mean([np.log(r[0.0] / r[np.pi / 2]) for r in pairs]))
  assert gain > 1.5, pairs


def _orientation_ratios(hr, cfg, seed):
  ratio = {}
  for theta in (0.0, np.pi / 2):
    k = degrade.gaussian_kernel(13, (2.2 ** 2, 0.6 ** 2), theta)
    lr = np.clip(degrade.blur_subsample(hr.astype(np.float64), k, 2), 0, 255) / 255
    res = kg.fit(lr, cfg, jax.random.key(seed))
    assert all(np.isfinite(v) for h in res.history for v in h.values())
    rows, cols = _axis_variances(kg.final_kernels(res.kernel_x2, 2))
    ratio[theta] = cols / rows
  return ratio
