"""IKE's non-invertible upscaler: the Z-upscale module U (its discriminators: `ikejax.nets`)."""

from __future__ import annotations

from typing import Optional

import jax
from flax import linen as nn

from ikejax import ops
from ikejax.nets import xavier_normal


class ZUpscaler(nn.Module):
  """Z-upscale module U (paper Sec. 2; official `ZSSRUpsampler`).

  `[h, w, Cz] -> [s*h, s*w, Cz]`: bicubic x`scale`, then eight 3x3 convs of
  `width` channels with bias, ReLU after the first seven, no global skip.
  `Cz = 3 * (s*s - 1)` (Z maps of the three colours, mixed freely).
  With `upsample=False` and `features` set, the same convs map any
  `[h, w, Cin] -> [h, w, features]` (the default recipe's U reads the image
  to be upscaled and writes all `s*s` sub-band slots, `ikejax.ike.model`).

  Init (`init_scheme`):
    * `'reference'`: Xavier-normal gain 0.1 on all eight convs, zero bias
      (official `weights_init_G`). Eight such layers scale the signal by
      ~1e-9: on a DIV2KRK crop U(Z) is ~1e-11 and its weight gradients
      ~1e-12, far below Adam's epsilon (1e-8), so U never trains and the
      decoder always sees Z_up = 0.
    * `'he'` (default): He-normal on the ReLU layers and a zero last layer:
      U(Z) starts at exactly 0, as in the official code, but receives
      gradients from the first step.
  """
  scale: int
  width: int = 64
  depth: int = 8
  resize_kind: str = "matlab"
  init_scheme: str = "he"
  upsample: bool = True
  features: Optional[int] = None

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if self.init_scheme not in ("he", "reference"):
      raise ValueError(f"unknown U init {self.init_scheme!r}; expected 'he' or 'reference'")
    c = self.features or z.shape[-1]
    x = ops.imresize(z, self.scale, self.resize_kind) if self.upsample else z
    for i in range(self.depth):
      last = i == self.depth - 1
      if self.init_scheme == "reference":
        kernel_init = xavier_normal(0.1)
      else:
        kernel_init = nn.initializers.zeros if last else nn.initializers.he_normal()
      x = nn.Conv(c if last else self.width, (3, 3), padding=1, kernel_init=kernel_init,
                  bias_init=nn.initializers.zeros, name=f"conv{i}")(x)
      if not last:
        x = nn.relu(x)
    return x
