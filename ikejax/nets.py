"""Linen pieces shared by IKE and the baselines: PyTorch's Xavier init and KernelGAN's patch
discriminator (IKE's PD1 and PD2, KernelGAN's D)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from ikejax import ops


def xavier_normal(gain: float) -> nn.initializers.Initializer:
  """PyTorch's `xavier_normal_(gain)`: N(0, gain^2 * 2 / (fan_in + fan_out))."""
  return nn.initializers.variance_scaling(gain * gain, "fan_avg", "normal")


def _bn_scale_init(key, shape, dtype=jnp.float32):
  """BatchNorm weight ~ N(1, 0.02) (official `weights_init_D`)."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class SampleBatchNorm(nn.Module):
  """BatchNorm in training mode, with the statistics of each sample separately.

  `[N, H, W, C] -> [N, H, W, C]`: sample `n` is normalised by its own mean and
  (biased) variance over H and W, then scaled and shifted per channel, as a
  training-mode `nn.BatchNorm` (or torch `BatchNorm2d`) called on that sample
  alone. The official code calls its discriminators once per image and never
  reads BatchNorm's running averages, so keeping none lets one batched call
  replace several calls exactly. Parameters `scale` and `bias` as
  `nn.BatchNorm`'s.
  """
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param("scale", _bn_scale_init, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) - jnp.square(mean), 0.0)
    x_hat = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    return x_hat * scale[None, None, None] + bias[None, None, None]


class PatchDiscriminator(nn.Module):
  """KernelGAN's fully convolutional patch discriminator (PD1 and PD2 of IKE).

  `[N, H, W, 3] -> [N, H-6, W-6, 1]` in (0, 1): a spectral-norm 7x7 conv with
  no activation, five [spectral-norm 1x1 conv, BatchNorm, ReLU], a
  spectral-norm 1x1 conv to one channel, sigmoid. BatchNorm always uses the
  statistics of the current input, as the official code keeps D in train
  mode, and of each of the N images separately (`SampleBatchNorm`): a
  batched call equals N calls. Spectral norm runs one power iteration per
  call when `update_stats`. Variables: `params` and `batch_stats` (the
  spectral-norm vectors). `banded_stem` computes the 7x7 RGB conv with
  `ops.conv2d_banded` (same function; XLA:CPU's direct conv with three input
  channels is slow).
  """
  width: int = 64
  kernel_size: int = 7
  n_layers: int = 7
  banded_stem: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool) -> jax.Array:
    conv = lambda f, k, name, **kw: nn.SpectralNorm(nn.Conv(
        f, (k, k), padding="VALID", kernel_init=xavier_normal(0.1),
        bias_init=nn.initializers.zeros, name=name, **kw), name=f"sn_{name}")
    # 1x1 convs as Dense layers (kernel [Cin, Cout] instead of [1, 1, Cin, Cout]: the
    # same map, init and spectral norm); XLA:CPU runs their weight gradients as plain
    # matmuls instead of slow transposed convolutions.
    dense = lambda f, name: nn.SpectralNorm(nn.Dense(
        f, kernel_init=xavier_normal(0.1), bias_init=nn.initializers.zeros, name=name),
        name=f"sn_{name}")
    # The RGB stem as a banded matmul: same function, ~2.5x faster on CPU.
    stem = {"conv_general_dilated": ops.banded_conv_general_dilated} if self.banded_stem else {}
    x = conv(self.width, self.kernel_size, "conv0", **stem)(x, update_stats=update_stats)
    for i in range(1, self.n_layers - 1):
      x = dense(self.width, f"conv{i}")(x, update_stats=update_stats)
      x = SampleBatchNorm(name=f"bn{i}")(x)
      x = nn.relu(x)
    x = dense(1, f"conv{self.n_layers - 1}")(x, update_stats=update_stats)
    return nn.sigmoid(x)

  @property
  def shave(self) -> int:
    """Pixels lost per spatial axis (valid convolution)."""
    return self.kernel_size - 1
