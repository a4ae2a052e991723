"""IKE's generator around the flow: bicubic residual, colour layout, U and D.

`IKEModel` is a static (hashable) bundle of the Linen modules plus the pure
functions that wire them (paper Fig. 1; official `InvRescaleNet.forward`):

  encode:  X_LR -> (X_LLR, Z)
           D = down(X_LR);  R = X_LR - up(D);  [R_down, Z] = flow(R)
           X_LLR = D + R_down
  decode:  (X_LR, Z_up) -> X_SR
           R_lr = X_LR - up(down(X_LR));  R_up = flow^-1([R_lr, Z_up])
           X_SR = up(X_LR) + R_up

`down`/`up` are bicubic resizes by 1/s and s (`ops.imresize`). With
`bicubic_residual=False` (ablation) the flow maps the images themselves.
Images are `[H, W, 3]` in [-1, 1]; Z is `[h, w, 3 * (s*s - 1)]` with channel
`k * 3 + c` for latent map `k` of colour `c` (the official U's layout).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ikejax import ops
from ikejax.ike.flow import IKEFlow, squeeze_factors
from ikejax.ike.networks import ZUpscaler
from ikejax.nets import PatchDiscriminator


def _to_colour_batch(x: jax.Array) -> jax.Array:
  """`[H, W, C] -> [C, H, W, 1]`: colours become the flow's batch."""
  return jnp.transpose(x, (2, 0, 1))[..., None]


@dataclasses.dataclass(frozen=True)
class IKEModel:
  """Static description of one IKE model; all methods are pure."""
  flow: IKEFlow
  up: ZUpscaler
  d_lr: PatchDiscriminator
  d_hr: PatchDiscriminator
  scale: int
  resize_kind: str = "matlab"
  bicubic_residual: bool = True
  u_input: str = "z"

  @property
  def z_channels(self) -> int:
    return 3 * (self.scale * self.scale - 1)

  def down(self, x: jax.Array) -> jax.Array:
    """Bicubic `[H, W, C] -> [H/s, W/s, C]`."""
    return ops.imresize(x, 1.0 / self.scale, self.resize_kind)

  def up_bicubic(self, x: jax.Array) -> jax.Array:
    """Bicubic `[h, w, C] -> [s*h, s*w, C]`."""
    return ops.imresize(x, float(self.scale), self.resize_kind)

  def encode(self, flow_params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward (downscaling) pass, `[H, W, 3] -> ([H/s, W/s, 3], [H/s, W/s, Cz])`."""
    if self.bicubic_residual:
      base = self.down(x)
      x = x - self.up_bicubic(base)
    out = self.flow.apply({"params": flow_params}, _to_colour_batch(x),
                          method=IKEFlow.forward)          # [3, h, w, s*s]
    llr = jnp.transpose(out[..., 0], (1, 2, 0))           # [h, w, 3]
    if self.bicubic_residual:
      llr = llr + base
    z = jnp.transpose(out[..., 1:], (1, 2, 3, 0))         # [h, w, nz, 3]
    return llr, z.reshape(z.shape[:2] + (-1,))

  def downscale_kernel(self, flow_params, side: int) -> jax.Array:
    """The downscaler's weights `d X_LLR[c, c, 0] / d X` on a zero `[side, side, 3]` image.

    `c = side / s // 2`; returns the `[side, side]` map of colour 0 (colours never
    mix), aligned with input pixel `(s*c, s*c)`: the blur kernel when the subnets
    are linear (`ikejax.imaging.kernels`). Differentiable in `flow_params`.
    """
    centre = side // self.scale // 2

    def centre_pixel(x):
      return self.encode(flow_params, x)[0][centre, centre, 0]
    return jax.grad(centre_pixel)(jnp.zeros((side, side, 3), jnp.float32))[..., 0]

  def decode(self, flow_params, x_lr: jax.Array, z_up: jax.Array) -> jax.Array:
    """Inverse (upscaling) pass, `([H, W, 3], [H, W, Cz]) -> [s*H, s*W, 3]`.

    `z_up` may also carry all `s*s` slots, `[H, W, 3 + Cz]`: its first three
    channels are then added to the LR slot (U's correction of the residual
    that the decoder would otherwise take as given, `u_input='image'`).
    """
    lr = x_lr - self.up_bicubic(self.down(x_lr)) if self.bicubic_residual else x_lr
    h, w, _ = z_up.shape
    if z_up.shape[-1] == self.z_channels + 3:
      lr, z_up = lr + z_up[..., :3], z_up[..., 3:]
    z = jnp.transpose(z_up.reshape(h, w, -1, 3), (3, 0, 1, 2))  # [3, H, W, nz]
    y = jnp.concatenate([_to_colour_batch(lr), z], axis=-1)
    out = self.flow.apply({"params": flow_params}, y, method=IKEFlow.inverse)
    sr = jnp.transpose(out[..., 0], (1, 2, 0))
    return sr + self.up_bicubic(x_lr) if self.bicubic_residual else sr

  def upscale_z(self, up_params, z: jax.Array) -> jax.Array:
    """U: `[h, w, Cz] -> [s*h, s*w, Cz]`."""
    return self.up.apply({"params": up_params}, z)

  def super_resolve(self, flow_params, up_params, x_lr: jax.Array) -> jax.Array:
    """`[H, W, 3] -> [s*H, s*W, 3]`.

    `u_input='z'` (paper): X_LR -> Z -> U(Z) -> inverse (H, W divisible by s).
    `u_input='image'`: U reads X_LR itself and writes every slot of the
    inverse, `U: [H, W, 3] -> [H, W, 3 + Cz]` (any H, W).
    """
    if self.u_input == "image":
      return self.decode(flow_params, x_lr, self.upscale_z(up_params, x_lr))
    _, z = self.encode(flow_params, x_lr)
    return self.decode(flow_params, x_lr, self.upscale_z(up_params, z))

  def discriminate(self, which: str, variables, x: jax.Array, update_stats: bool):
    """Runs PD1 (`'lr'`) or PD2 (`'hr'`) on one `[H, W, 3]` image or a batch `[N, H, W, 3]`.

    Each image of a batch is judged as if alone (per-image BatchNorm).

    Returns:
      (`[H-6, W-6]` or `[N, H-6, W-6]` map in (0, 1), updated `batch_stats`).
    """
    d = self.d_lr if which == "lr" else self.d_hr
    single = x.ndim == 3
    out, new_vars = d.apply(variables, x[None] if single else x, update_stats=update_stats,
                            mutable=["batch_stats"])
    out = out[..., 0]
    return (out[0] if single else out), new_vars["batch_stats"]


def probe_side(cfg) -> int:
  """Side of the zero image whose centre LLR pixel's receptive field stays inside it
  (`downscale_kernel`, `ikejax.imaging.kernels`).

  Each coupling applies up to three subnets (11x11 on its level's grid, a
  5 px radius there), so the flow reaches `sum_levels 3 * 5 * K * f` input
  pixels; the bicubic residual adds `4 s`. Rounded up to a multiple of `s`.
  """
  reach, grid = 0, 1
  for f in squeeze_factors(cfg.scale):
    grid *= f
    reach += 3 * 5 * cfg.blocks_per_level * grid
  side = 2 * (reach + 4 * cfg.scale) + cfg.scale
  return -(-side // cfg.scale) * cfg.scale


def build_model(cfg) -> IKEModel:
  """Builds the static model of a config (`ikejax.ike.configs.IKEConfig`)."""
  return IKEModel(
      flow=IKEFlow(scale=cfg.scale, blocks_per_level=cfg.blocks_per_level,
                   coupling=cfg.coupling, growth=cfg.growth, linear=cfg.linear_subnets,
                   reference_inverse=cfg.reference_inverse,
                   composed=cfg.compose_subnets, squeeze=cfg.squeeze),
      up=ZUpscaler(scale=cfg.scale, width=cfg.u_width, depth=cfg.u_depth,
                   resize_kind=cfg.resize_kind, init_scheme=cfg.u_init,
                   upsample=cfg.u_input == "z",
                   features=3 * cfg.scale * cfg.scale if cfg.u_input == "image" else None),
      d_lr=PatchDiscriminator(width=cfg.d_width),
      d_hr=PatchDiscriminator(width=cfg.d_width),
      scale=cfg.scale, resize_kind=cfg.resize_kind,
      bicubic_residual=cfg.bicubic_residual, u_input=cfg.u_input)


def init_variables(model: IKEModel, key: jax.Array, g_crop: int):
  """Initial variables of the four networks for G crops of size `g_crop`.

  Returns:
    dict with `flow`, `up` (params) and `d_lr`, `d_hr` (params + batch_stats).
  """
  k_flow, k_up, k_dlr, k_dhr = jax.random.split(key, 4)
  s = model.scale
  h = g_crop // s
  flow = model.flow.init(k_flow, jnp.zeros((3, g_crop, g_crop, 1)), method=IKEFlow.forward)
  u_in = (h, h, model.z_channels) if model.u_input == "z" else (h, h, 3)
  up = model.up.init(k_up, jnp.zeros(u_in))
  d_lr = model.d_lr.init(k_dlr, jnp.zeros((1, h, h, 3)), update_stats=True)
  d_hr = model.d_hr.init(k_dhr, jnp.zeros((1, g_crop, g_crop, 3)), update_stats=True)
  return {"flow": flow["params"], "up": up["params"], "d_lr": d_lr, "d_hr": d_hr}
