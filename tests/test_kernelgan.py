"""KernelGAN: G's kernel, constraints, the learner's schedule, training and kernel recovery."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import degrade, image_io, kernel
from ikejax import kernelgan as kg


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
  want = kernel.apply_kernel(x, k, 2)[3:3 + 14, 3:3 + 16]
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

  The embedded photo blurred and subsampled x2, the paper config at 1000 iterations.
  Measured (col/row variance ratio of the estimate, truth 13.4 and 0.07): 2026-11-22 on an
  AVX-512 box 2.29 and 0.84; 2026-11-29 on an AVX2 box, in this suite 0.60 and 0.17, and
  outside it seeds 0, 1, 2: 1.78 / 0.74, 1.47 / 0.73, 4.73 / 2.48. So each estimate carries a
  large anisotropy of its own that changes with the seed and the machine's float rounding
  (a GAN trained on one image), and only the difference follows the blur's axis: the
  orientation pair moves the ratio by 1.9-3.5x in every run (a transposed estimate would
  move it below 1x, a blur-blind one leave it near 1x). KernelGAN also pulls the size of
  every estimate towards ~1.3 px (1.25 px for a 0.7 px and 1.40 px for a 1.8 px isotropic
  truth at 3000 iterations on a sharp synthetic image; the official code reports 1.70 /
  1.31 px for DIV2KRK image 2's 1.08 / 0.96), so size alone is not a reliable test either.
  """
  _, hr, _ = image_io.default_image(2)
  cfg = kg.PRESETS["paper"].replace(iters=1000, log_every=1000)
  # 2000 iterations: XLA's optimisations (off suite-wide for compile speed) pay here.
  optimise = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    ratio = _orientation_ratios(hr, cfg)
  finally:
    jax.config.update("jax_disable_most_optimizations", optimise)
  assert ratio[0.0] > 1.5 * ratio[np.pi / 2], ratio


def _orientation_ratios(hr, cfg):
  ratio = {}
  for theta in (0.0, np.pi / 2):
    k = degrade.gaussian_kernel(13, (2.2 ** 2, 0.6 ** 2), theta)
    lr = np.clip(degrade.blur_subsample(hr.astype(np.float64), k, 2), 0, 255) / 255
    res = kg.fit(lr, cfg, jax.random.key(0))
    assert all(np.isfinite(v) for h in res.history for v in h.values())
    rows, cols = _axis_variances(kg.final_kernels(res.kernel_x2, 2))
    ratio[theta] = cols / rows
  return ratio
