"""The invertible flow of IKE (IKENet): squeeze levels of additive couplings.

Layout: the flow runs on a batch of one-channel images, `[N, H, W, 1]`; the
colour channels of an RGB image are that batch (they share the flow's weights,
as in the official code, which swaps the colour axis into the batch axis).

Each squeeze level is `space_to_depth(2 or 3)` followed by `K` coupling blocks
(paper Sec. 2; official `InvRescaleNet`, `src/modules/Inv_arch.py`):
  x2: one level (s=2);  x3: one level (s=3);  x4: two levels (s=2, s=2).
After the last level channel 0 is the (residual) LR image and channels
`1..s*s-1` are the latent `Z`.

All couplings are additive, hence volume preserving (log-det = 0), and have
separate, exact `forward` and `inverse` methods.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ikejax import ops
from ikejax.nets import xavier_normal


def squeeze_factors(scale: int) -> tuple[int, ...]:
  """Space-to-depth factors of the squeeze levels for an SR scale."""
  factors = {2: (2,), 3: (3,), 4: (2, 2)}
  if scale not in factors:
    raise ValueError(f"unsupported scale {scale}; expected one of {sorted(factors)}")
  return factors[scale]


class DenseSubnet(nn.Module):
  """The official `DenseBlock`: five 3x3 convs with dense connections.

  `[N, H, W, Cin] -> [N, H, W, features]`. conv1..conv4 emit `growth`
  channels each and see the concatenation of the input and all previous
  outputs; conv5 maps that concatenation to `features`. With `linear=True`
  (the official run command's `--linear`) there is no activation, so the
  subnet is an affine map with an 11x11 receptive field; otherwise
  LeakyReLU(0.2) follows conv1..conv4. Every conv has a bias and is
  initialised Xavier-normal with gain 0.1 (official `weights_init_G`
  overrides the block's own zero init of conv5).

  `composed=True` (linear subnets only) evaluates the same parameters as one
  11x11 convolution plus a bias: the five layers are composed on every call,
  differentiably, by pushing impulses through them. It equals the
  layer-by-layer map exactly (to float rounding) wherever the 11x11 window
  lies inside the input; within 5 px of the border the layer-by-layer path
  zero-pads every intermediate feature map, the composed one only the input.
  """
  features: int
  growth: int = 32
  linear: bool = True
  init_gain: float = 0.1
  composed: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    convs = [nn.Conv(self.growth if i < 4 else self.features, (3, 3), padding=1,
                     kernel_init=xavier_normal(self.init_gain),
                     bias_init=nn.initializers.zeros, name=f"conv{i + 1}")
             for i in range(5)]

    def layers(v):
      feats = [v]
      for conv in convs[:4]:
        h = conv(jnp.concatenate(feats, axis=-1))
        feats.append(h if self.linear else nn.leaky_relu(h, 0.2))
      return convs[4](jnp.concatenate(feats, axis=-1))

    if not (self.composed and self.linear):
      return layers(x)
    kernel, bias = self._compose(convs, x.shape[-1], x.dtype)
    return ops.conv2d_banded(x, kernel) + bias[None, None, None, :]

  @staticmethod
  def _compose(convs, cin: int, dtype):
    """The affine subnet as (11x11 HWIO kernel, bias), from its five layers.

    Linear part: one impulse per input channel, pushed through the layers on
    canvases that grow with the receptive field (3, 5, ..., 11 px; each
    layer's inputs are zero-padded by one pixel, exact because an impulse
    response is zero outside its support); an all-zero probe on the same
    canvases is subtracted to remove the biases. That is 285 pixels per probe
    instead of 5 x 121 on a fixed 11x11 canvas. Bias: the response to a
    constant input, propagated through 3x3 canvases of each layer's centre
    value. A correlation kernel is the flipped impulse response.
    """
    def pad_to(f, size):
      p = (size - f.shape[1]) // 2
      return jnp.pad(f, ((0, 0), (p, p), (p, p), (0, 0)))

    probes = jnp.concatenate([jnp.eye(cin, dtype=dtype), jnp.zeros((1, cin), dtype)])
    feats = [probes[:, None, None, :]]                    # [cin + 1, 1, 1, cin]
    for i, conv in enumerate(convs):
      size = 2 * i + 3
      feats.append(conv(jnp.concatenate([pad_to(f, size) for f in feats], axis=-1)))
    resp = feats[-1]                                      # [cin + 1, 11, 11, cout]
    k = (resp[:cin] - resp[cin:])[:, ::-1, ::-1]
    values = [jnp.zeros((1, 1, 1, cin), dtype)]
    for conv in convs:
      canvas = jnp.concatenate([jnp.broadcast_to(v, (1, 3, 3, v.shape[-1])) for v in values],
                               axis=-1)
      values.append(conv(canvas)[:, 1:2, 1:2])
    return jnp.transpose(k, (1, 2, 0, 3)), values[-1][0, 0, 0]


class TriChannelCoupling(nn.Module):
  """IKE's tri-channel additive coupling (paper Table 1).

  The `C` channels split into `x_a` (channel 0, the LR slot), `x_b`
  (channels `1..C-2`, part of Z) and `x_res` (channel `C-1`, passed through).
  With phi: x_b -> x_a, sigma: x_a -> x_b, rho: x_res -> x_a:

    forward:  a = x_a + phi(x_b);  y_b = x_b + sigma(a);
              y_a = a + rho(x_res);  y_res = x_res
    inverse:  a = y_a - rho(y_res);  x_b = y_b - sigma(a);
              x_a = a - phi(x_b);  x_res = y_res

  Additive coupling: volume preserving, log-det = 0. `inverse` is exact.
  `inverse_reference` reproduces the official reverse pass, which evaluates
  sigma at `y_a` instead of `a` and so is off by `-sigma(rho(x_res))`.
  """
  channels: int
  growth: int = 32
  linear: bool = True
  composed: bool = False

  def setup(self):
    if self.channels < 3:
      raise ValueError(f"tri-channel coupling needs >= 3 channels, got {self.channels}")
    sub = lambda f: DenseSubnet(f, growth=self.growth, linear=self.linear,
                               composed=self.composed)
    self.phi = sub(1)
    self.sigma = sub(self.channels - 2)
    self.rho = sub(1)

  def _split(self, x):
    return x[..., :1], x[..., 1:-1], x[..., -1:]

  def forward(self, x: jax.Array) -> jax.Array:
    """`[N, H, W, C] -> [N, H, W, C]`."""
    x_a, x_b, x_res = self._split(x)
    a = x_a + self.phi(x_b)
    y_b = x_b + self.sigma(a)
    y_a = a + self.rho(x_res)
    return jnp.concatenate([y_a, y_b, x_res], axis=-1)

  def inverse(self, y: jax.Array) -> jax.Array:
    """Exact inverse of `forward`, `[N, H, W, C] -> [N, H, W, C]`."""
    y_a, y_b, y_res = self._split(y)
    a = y_a - self.rho(y_res)
    x_b = y_b - self.sigma(a)
    x_a = a - self.phi(x_b)
    return jnp.concatenate([x_a, x_b, y_res], axis=-1)

  def inverse_reference(self, y: jax.Array) -> jax.Array:
    """The official (inexact) reverse: `x_b = y_b - sigma(y_a)`."""
    y_a, y_b, y_res = self._split(y)
    x_b = y_b - self.sigma(y_a)
    x_a = y_a - self.phi(x_b) - self.rho(y_res)
    return jnp.concatenate([x_a, x_b, y_res], axis=-1)

  def __call__(self, x):
    return self.forward(x)


class AdditiveCoupling(nn.Module):
  """Plain two-way additive coupling (NICE/RealNVP), the ablation baseline.

  Split `x_a` = channel 0, `x_b` = channels `1..C-1`:
    forward:  y_a = x_a + phi(x_b);  y_b = x_b + sigma(y_a)
    inverse:  x_b = y_b - sigma(y_a);  x_a = y_a - phi(x_b)
  Volume preserving, log-det = 0, exact inverse (the official one is too).
  """
  channels: int
  growth: int = 32
  linear: bool = True
  composed: bool = False

  def setup(self):
    sub = lambda f: DenseSubnet(f, growth=self.growth, linear=self.linear,
                               composed=self.composed)
    self.phi = sub(1)
    self.sigma = sub(self.channels - 1)

  def forward(self, x: jax.Array) -> jax.Array:
    x_a, x_b = x[..., :1], x[..., 1:]
    y_a = x_a + self.phi(x_b)
    return jnp.concatenate([y_a, x_b + self.sigma(y_a)], axis=-1)

  def inverse(self, y: jax.Array) -> jax.Array:
    y_a, y_b = y[..., :1], y[..., 1:]
    x_b = y_b - self.sigma(y_a)
    return jnp.concatenate([y_a - self.phi(x_b), x_b], axis=-1)

  inverse_reference = inverse

  def __call__(self, x):
    return self.forward(x)


# (squeeze, its exact inverse) of each squeeze kind.
SQUEEZES = {"space2depth": (ops.space_to_depth, ops.depth_to_space),
            "haar": (ops.haar_squeeze, ops.haar_unsqueeze)}


def _batched(fn, x, s):
  return jax.vmap(lambda im: fn(im, s))(x)


class IKEFlow(nn.Module):
  """IKENet: `[N, H, W, 1] <-> [N, H/s, W/s, s*s]` for SR scale `s`.

  Attributes:
    scale: 2, 3 or 4.
    blocks_per_level: coupling blocks after each squeeze (paper: K = 4).
    coupling: `'tri'` (IKE) or `'additive'` (two-way ablation).
    growth: dense-subnet growth channels (32).
    linear: linear (affine) subnets, as the official run command.
    reference_inverse: use the official, inexact reverse pass in `inverse`.
    composed: evaluate linear subnets as one composed 11x11 conv each
      (`DenseSubnet`); same parameters, same function away from borders.
    squeeze: `'space2depth'` (the official run command's) or `'haar'`
      (`ops.haar_squeeze`: channel 0 holds block means, the inverse spreads
      the LR slot over the whole block).
  """
  scale: int = 2
  blocks_per_level: int = 4
  coupling: str = "tri"
  growth: int = 32
  linear: bool = True
  reference_inverse: bool = False
  composed: bool = False
  squeeze: str = "space2depth"

  def setup(self):
    if self.squeeze not in SQUEEZES:
      raise ValueError(f"unknown squeeze {self.squeeze!r}; expected one of {sorted(SQUEEZES)}")
    block_cls = {"tri": TriChannelCoupling, "additive": AdditiveCoupling}.get(self.coupling)
    if block_cls is None:
      raise ValueError(f"unknown coupling {self.coupling!r}; expected 'tri' or 'additive'")
    channels, blocks = 1, []
    for s in squeeze_factors(self.scale):
      channels *= s * s
      blocks.extend(
          block_cls(channels, growth=self.growth, linear=self.linear,
                    composed=self.composed)
          for _ in range(self.blocks_per_level))
    self.blocks = blocks

  def _levels(self) -> Sequence[tuple[int, list]]:
    k = self.blocks_per_level
    return [(s, self.blocks[i * k:(i + 1) * k])
            for i, s in enumerate(squeeze_factors(self.scale))]

  def forward(self, x: jax.Array) -> jax.Array:
    """Downscaling pass, `[N, H, W, 1] -> [N, H/s, W/s, s*s]`."""
    squeeze, _ = SQUEEZES[self.squeeze]
    for s, blocks in self._levels():
      x = _batched(squeeze, x, s)
      for block in blocks:
        x = block.forward(x)
    return x

  def inverse(self, y: jax.Array) -> jax.Array:
    """Upscaling pass, `[N, h, w, s*s] -> [N, s*h, s*w, 1]`."""
    _, unsqueeze = SQUEEZES[self.squeeze]
    for s, blocks in reversed(self._levels()):
      for block in reversed(blocks):
        y = block.inverse_reference(y) if self.reference_inverse else block.inverse(y)
      y = _batched(unsqueeze, y, s)
    return y

  def __call__(self, x):
    return self.forward(x)
