"""Known-value tests of the losses."""

import jax.numpy as jnp
import numpy as np

from ikejax import ops
from ikejax.ike import losses


def test_gan_loss_known_values():
  d = jnp.array([[0.25, 0.75], [1.0, 0.0]])
  np.testing.assert_allclose(losses.gan_loss(d, real=True), (0.75 + 0.25 + 0 + 1) / 4)
  np.testing.assert_allclose(losses.gan_loss(d, real=False), (0.25 + 0.75 + 1 + 0) / 4)


def test_energy_mean9_known_value():
  x = jnp.zeros((32, 32, 3))
  down = jnp.zeros((16, 16, 3))
  llr = jnp.full((16, 16, 3), 0.5).at[0, 0, 0].set(0.5 + 81.0)
  # 9x9 'valid' means: 8x8 outputs per channel, all 0.5 except the one window
  # per channel-0 output that sees the spike (81 / 81 = +1).
  expected = (8 * 8 * 3 * 0.5 + 1.0) / (8 * 8 * 3)
  np.testing.assert_allclose(losses.energy_loss(x, llr, down, kind="mean9"), expected, rtol=1e-6)


def test_energy_gauss36_constant_images():
  # Gray of a constant c is c; the 36x36 Gaussian (stride 2, pad 17) keeps c in the interior.
  x = jnp.full((64, 64, 3), 0.4)
  llr = jnp.full((32, 32, 3), 0.4)
  v = losses.energy_loss(x, llr, None, kind="gauss36", scale=2)
  # Zero padding only darkens a 1-px frame where the sigma-0.9 tail reaches.
  assert 0 < float(v) < 0.05
  inner = losses._shave_to(jnp.ones((30, 30)), (28, 28))
  assert inner.shape == (28, 28)


def test_bicubic_warmup_exact_and_reference_quirk():
  x = jnp.full((32, 32, 3), 0.2)
  llr = jnp.full((16, 16, 3), 0.2)
  down = ops.imresize(x, 0.5)
  np.testing.assert_allclose(losses.bicubic_warmup_loss(x, llr, down, kind="exact"), 0.0,
                             atol=1e-12)
  # The official target sums the three channels: 3 * 0.2 in the interior.
  ref = losses.bicubic_warmup_loss(x, jnp.full((16, 16, 1), 0.6), down, kind="reference")
  interior_only = float(ref)
  assert interior_only < 0.01  # Only the zero-padded frame differs from 0.6.
  per_channel = losses.bicubic_warmup_loss(x, llr, down, kind="reference")
  assert float(per_channel) > 0.1


def test_edge_mask_and_interpolation_loss():
  flat = jnp.zeros((16, 16, 3))
  np.testing.assert_array_equal(losses.edge_mask(flat), 1.0)
  sr = flat + 0.1
  np.testing.assert_allclose(losses.interpolation_loss(sr, flat), 0.1, rtol=1e-5)
  # A vertical edge: the mask is 0 where the Sobel magnitude peaks, 1 far away.
  edge = jnp.zeros((16, 16, 3)).at[:, 8:].set(1.0)
  m = np.asarray(losses.edge_mask(edge))[..., 0]
  assert m.min() == 0.0 and m[:, 7:9].max() == 0.0 and m[:, 0].min() == 1.0


def test_tv_loss_variants():
  ramp = jnp.tile(jnp.arange(5.0)[None, :, None], (4, 1, 3)) * 0.1
  np.testing.assert_allclose(losses.tv_loss(ramp, "isotropic"), 0.1, rtol=1e-4)
  np.testing.assert_allclose(losses.tv_loss(ramp, "squared"), 2 * 0.01, rtol=1e-5)


def test_kernel_prior_is_zero_for_a_compact_blur_only():
  side, s = 42, 2
  o = s * (side // s // 2)                       # the LLR pixel's top-left input pixel
  blur = np.zeros((side, side))
  g = ops.gaussian_kernel(6, 1.0)                # centred on (o + 0.5, o + 0.5)
  blur[o - 2:o + 4, o - 2:o + 4] = g / g.sum()
  assert float(losses.kernel_prior_loss(jnp.asarray(blur), s)) == 0.0
  ringing = blur.copy()
  ringing[o, o + 6] = -0.1                       # a negative tap 5.5 px out: its mass is the loss
  np.testing.assert_allclose(losses.kernel_prior_loss(jnp.asarray(ringing), s), 0.1, rtol=1e-6)
  far = blur.copy()
  far[o, o + 13] = 0.1                           # 12.5 px right, 0.5 px down: past 4 s = 8 px
  np.testing.assert_allclose(losses.kernel_prior_loss(jnp.asarray(far), s),
                             0.1 * (np.hypot(12.5, 0.5) - 8), rtol=1e-5)


def test_reconstruction_loss_is_mean_abs():
  a, b = jnp.zeros((4, 4, 3)), jnp.full((4, 4, 3), -0.5)
  np.testing.assert_allclose(losses.reconstruction_loss(a, b), 0.5)
