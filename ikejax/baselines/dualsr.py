"""DualSR (Emad, Peemen, Corporaal, WACV 2021): an upsampler and a linear downsampler trained
as a dual pair on the input image alone.

Follows the official code (memad73/DualSR at 8656f01: `networks.py`, `DualSR.py`, `loss.py`,
`learner.py`, `data.py`, `util.py`, `options.py`, `torch_sobel.py`; reference.md Sec. 3;
cited in third_party/README.md). Images are in [0, 1] throughout, as its `im2tensor`.
  * G_UP (`UpGenerator`): a fixed bilinear x2 (`bilinear_up2`: edge-replicate 1 px, the
    four 2x2 kernels [9, 3, 3, 1] / 16, pixel shuffle, 1 px cropped), then 8 convs 3x3 x 64
    with bias and zero padding, ReLU after the first 7, added to the bilinear image.
    Kaiming-normal (fan-in, ReLU) weights, zero biases.
  * G_DN (`DownGenerator`): linear convs [7, 5, 3, 1, 1, 1] x 64, no bias, valid, stride 2
    on the 3x3 layer; colours are a batch of gray images; weights N(1/n, 1/n), n = fan-in.
    Its kernel (`kernelgan.generator_kernel`) is its impulse response, 13x13, the official
    `calc_curr_k`.
  * D_DN (`DownDiscriminator`): KernelGAN's D, spectral-norm 7x7 conv, five [spectral-norm
    1x1, BatchNorm, ReLU], spectral-norm 1x1, sigmoid; BatchNorm in training mode over the
    whole batch of each call; one power iteration per call (3 per iteration: the G step's
    call, then D's fake and real calls, in that order).
  * Losses (`DualSR.train_G`, `train_D`): LSGAN (MSE against 1 / 0); cycle L1 both ways
    x lambda_cycle 5 (G_DN(G_UP(x)) vs x, G_UP(G_DN(y)) vs y, shaved symmetrically); the
    masked interpolation loss x 2 (`interp_mask`: 1 - clamp(Sobel, 0, 1), the kornia Sobel
    per colour channel, unnormalised, zero padding, of the MATLAB-bicubic x2 of the LR crop);
    the downsampler regularisation x 2: KernelGAN's bicubic 5 (decaying), sum-to-one 0.5,
    boundaries 0.5, centralised 0 -> 1 and sparsity 0 -> 5 (`kernelgan.kernel_constraints`,
    the learner's `kernelgan._learner`, which `learner.py` repeats). D's loss is
    0.5 (fake + real), on the G step's fake (before G's update).
  * The bicubic term as the official `DownScaleLoss`: its `k.expand(C, C, ...)` sums the
    three colour channels into each target channel (`bicubic_kind='reference'`, the
    default; 'exact' compares each channel with its own MATLAB downscale, as KernelGAN's
    default in `kernelgan.py`).
  * Adam, beta1 0.5: G_UP lr 1e-3 halved every 750 iterations (StepLR stepped after each
    iteration); G_DN and D_DN lr 2e-4 divided by 4 after iterations 750, 1500, 2250.
  * Data (`data.py`): a 10 px border shaved, H and W cropped to even; per iteration a batch
    of 2 (HR crop 128 from the gradient map of the image's bicubic half, LR crop 64 from the
    image's own, corners even; `patches.crop_samplers`). 3000 iterations.
  * Inference (`DualSR.eval`): G_UP on the whole input, clipped to [0, 1].

Deviations (all numerically the same model unless said):
  * D's conv weights start as PyTorch's default Conv2d init, U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) (`d_init='torch'`), which is what the official code trains from: its D
    runs a forward pass in `__init__` (`forward_shave`), after which `m.weight` of a
    spectral-norm conv is a computed tensor, so `weights_init_D_DN`'s `xavier_normal_`
    writes into that copy and never reaches `weight_orig` (its biases are zeroed and its
    BatchNorm weights drawn as written). `d_init='xavier'` is the written intent (gain 0.1).
  * G_DN is applied as its composed 13x13 stride-2 kernel (`composed=True`, the same
    linear map: the stride on the 3x3 layer commutes with the 1x1 layers after it).
  * Random draws follow JAX keys (crop centres by inverse CDF, `patches`), not
    torch/NumPy seeds 0.
  * Images smaller than 128 + 20 px keep their border (the official code would crash).

The whole iteration (G step, D step, learner) is one jit-compiled function of an explicit
state pytree (`DualSRState`), run by `ikejax.loop.fit_loop`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from ikejax import conv_grad, loop, ops, patches, tiles
from ikejax.baselines import kernelgan
from ikejax.nets import xavier_normal

PyTree = Any


@dataclasses.dataclass(frozen=True)
class DualSRConfig:
  """DualSR's settings (official `options.py`, `networks.py`, `loss.py`, `learner.py`)."""
  iters: int = 3000
  batch: int = 2
  crop: int = 128                         # HR crop (G_DN's input); the LR crop is crop // 2.
  crop_map: str = "official"              # crop-centre gradient maps (patches.GRADIENT_MAPS).
  up_width: int = 64
  up_depth: int = 8
  dn_structure: tuple = (7, 5, 3, 1, 1, 1)
  dn_width: int = 64
  d_width: int = 64
  d_layers: int = 7
  d_kernel: int = 7
  d_init: str = "torch"                   # 'torch' (what the official D trains from) or 'xavier'.
  lr_up: float = 1e-3
  lr_dn: float = 2e-4
  lr_d: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999
  up_decay_every: int = 750               # G_UP: StepLR(750, 0.5).
  up_decay: float = 0.5
  dn_decay_every: int = 750               # G_DN, D_DN: lr / 4 after 750, 1500, ...
  dn_decay: float = 4.0
  lambda_cycle: float = 5.0
  lambda_interp: float = 2.0
  lambda_regularization: float = 2.0
  lambda_sum2one: float = 0.5
  lambda_bicubic: float = 5.0
  lambda_boundaries: float = 0.5
  lambda_centralized_end: float = 1.0
  lambda_sparse_end: float = 5.0
  bicubic_threshold: float = 0.4          # "similar to bicubic" after 3 iterations below it.
  lambda_update_every: int = 200
  lambda_bicubic_decay: float = 100.0
  lambda_bicubic_min: float = 5e-6
  bicubic_kind: str = "reference"         # official channel-summing target, or 'exact'.
  composed: bool = True                   # G_DN as its one 13x13 stride-2 kernel (same map).
  shave: int = 10                         # border removed before cropping (`shave_edges`).
  log_every: int = 50

  def replace(self, **kw) -> "DualSRConfig":
    return dataclasses.replace(self, **kw)

  @property
  def kernel_size(self) -> int:
    """Support of G_DN's impulse response: 1 + sum(k - 1) = 13."""
    return 1 + sum(k - 1 for k in self.dn_structure)

  @property
  def lr_crop(self) -> int:
    return self.crop // 2

  @property
  def dn_out(self) -> int:
    """G_DN's output side for a `crop` input (58 for 128)."""
    return (self.crop - self.kernel_size) // 2 + 1

  def validate(self) -> "DualSRConfig":
    if self.iters < 1 or self.batch < 1:
      raise ValueError(f"dualsr iters and batch must be >= 1, got {self.iters}, {self.batch}")
    if self.crop % 2:
      raise ValueError(f"dualsr crop must be even, got {self.crop}")
    if self.up_depth < 2 or min(self.up_width, self.dn_width, self.d_width) < 1:
      raise ValueError("dualsr needs up_depth >= 2 and widths >= 1")
    if list(self.dn_structure).count(3) != 1 or self.dn_structure[0] == 3:
      raise ValueError("dualsr's G_DN strides on its one 3x3 layer, which must not be the first")
    if self.d_init not in ("torch", "xavier"):
      raise ValueError(f"d_init must be 'torch' or 'xavier', got {self.d_init!r}")
    if self.bicubic_kind not in ("exact", "reference"):
      raise ValueError(f"bicubic_kind must be 'exact' or 'reference', got {self.bicubic_kind!r}")
    if self.crop_map not in patches.GRADIENT_MAPS:
      raise ValueError(f"crop_map must be one of {patches.GRADIENT_MAPS}, got {self.crop_map!r}")
    if self.dn_out < self.d_kernel + 1:
      raise ValueError(f"crop {self.crop} is too small: G_DN's output must exceed D's "
                       f"{self.d_kernel}x{self.d_kernel} field")
    return self


PRESETS = {"paper": DualSRConfig(),
           "tiny": DualSRConfig(iters=6, crop=32, up_width=8, up_depth=3, dn_width=8,
                                d_width=8, log_every=2)}


# ------------------------------------------------------------------------------
# The networks.
# ------------------------------------------------------------------------------

# The official 2x2 kernels, one per pixel-shuffle position (dy, dx), over the replicate-padded
# window [[a, b], [c, d]]: half-pixel bilinear x2 with clamped borders.
_BILINEAR = np.array([[[9, 3, 3, 1], [3, 9, 1, 3]],
                      [[3, 1, 9, 3], [1, 3, 3, 9]]], np.float32) / 16.0


def bilinear_up2(x: jax.Array) -> jax.Array:
  """`[N, h, w, C] -> [N, 2h, 2w, C]`: G_UP's fixed bilinear x2 (official `bilinear_upsample`).

  Pads 1 px by edge replication, forms for every 2x2 window the four sub-pixels with the
  [9, 3, 3, 1] / 16 kernels, interleaves them (pixel shuffle) and crops 1 px per side.
  """
  n, h, w, c = x.shape
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  win = (p[:, :-1, :-1], p[:, :-1, 1:], p[:, 1:, :-1], p[:, 1:, 1:])
  sub = [[sum(float(_BILINEAR[dy, dx, i]) * win[i] for i in range(4)) for dx in (0, 1)]
         for dy in (0, 1)]
  # [N, h+1, dy, w+1, dx, C] -> [N, 2(h+1), 2(w+1), C]
  full = jnp.stack([jnp.stack(row, axis=3) for row in sub], axis=2)
  full = full.reshape(n, 2 * (h + 1), 2 * (w + 1), c)
  return full[:, 1:-1, 1:-1]


class UpGenerator(nn.Module):
  """G_UP, `[N, h, w, 3] -> [N, 2h, 2w, 3]`: bilinear x2 plus a residual of `depth` convs.

  3x3 convs with bias and zero padding, `width` channels, ReLU after all but the last;
  Kaiming-normal weights (PyTorch's `kaiming_normal_`, fan-in, ReLU gain: a plain normal,
  not flax's truncated one), zero biases. The 64-channel layers take `conv_grad`'s fast
  filter gradient (`fast_grad`); the RGB stem stays a plain conv (`banded_stem=True`, the
  banded matmul D's stem uses, is slower here: the same function either way).
  """
  width: int = 64
  depth: int = 8
  banded_stem: bool = False
  fast_grad: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    up = bilinear_up2(x)
    init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
    h = up
    for i in range(self.depth):
      last = i == self.depth - 1
      if i == 0:
        stem = {"conv_general_dilated": ops.banded_conv_general_dilated} if (
            self.banded_stem) else {}
      else:
        stem = {"conv_general_dilated": conv_grad.conv_general_dilated} if self.fast_grad else {}
      h = nn.Conv(x.shape[-1] if last else self.width, (3, 3), padding="SAME",
                  kernel_init=init, bias_init=nn.initializers.zeros, name=f"conv{i}",
                  **stem)(h)
      if not last:
        h = nn.relu(h)
    return up + h


def _mean_normal_init(key, shape, dtype=jnp.float32):
  """N(1/n, 1/n) with n the fan-in (official `weights_init_G_DN`)."""
  n = int(np.prod(shape[:-1]))
  return (1.0 + jax.random.normal(key, shape, dtype)) / n


class DownGenerator(nn.Module):
  """G_DN, `[N, H, W, 1] -> [N, (H - 13) // 2 + 1, ..., 1]`: a linear x2 downscaler.

  Valid convs without bias or activation; the 3x3 layer has stride 2; the 1x1 layers are
  `Dense` (the same map).
  """
  structure: tuple = (7, 5, 3, 1, 1, 1)
  width: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n = len(self.structure)
    for i, k in enumerate(self.structure):
      feats = 1 if i == n - 1 else self.width
      if k == 1:
        x = nn.Dense(feats, use_bias=False, kernel_init=_mean_normal_init, name=f"conv{i}")(x)
      else:
        x = nn.Conv(feats, (k, k), strides=2 if k == 3 else 1, padding="VALID",
                    use_bias=False, kernel_init=_mean_normal_init, name=f"conv{i}")(x)
    return x


def _bn_scale_init(key, shape, dtype=jnp.float32):
  """BatchNorm weight ~ N(1, 0.02) (official `weights_init_D_DN`)."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class BatchNormTrain(nn.Module):
  """Training-mode BatchNorm over the whole call, `[N, H, W, C] -> [N, H, W, C]`.

  Normalised by the mean and biased variance over N, H and W (torch `BatchNorm2d` in train
  mode; DualSR's D sees batches of 2 and never reads its running averages, so none is kept).
  """
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param("scale", _bn_scale_init, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    mean = jnp.mean(x, axis=(0, 1, 2), keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=(0, 1, 2), keepdims=True) - jnp.square(mean),
                      0.0)
    x_hat = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    return x_hat * scale[None, None, None] + bias[None, None, None]


class DownDiscriminator(nn.Module):
  """D_DN, `[N, H, W, 3] -> [N, H - 6, W - 6, 1]` in (0, 1): KernelGAN's patch D.

  As `ikejax.nets.PatchDiscriminator` (same layers, variable names and banded stem) except
  that BatchNorm pools the whole batch of the call (`BatchNormTrain`) and the weights start
  as `weight_init` says: 'torch', U(-1/sqrt(fan_in), 1/sqrt(fan_in)), or 'xavier' (gain 0.1).
  Variables: `params` and `batch_stats` (the spectral-norm vectors).
  """
  width: int = 64
  kernel_size: int = 7
  n_layers: int = 7
  weight_init: str = "torch"
  banded_stem: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool) -> jax.Array:
    w_init = (nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
              if self.weight_init == "torch" else xavier_normal(0.1))
    stem = {"conv_general_dilated": ops.banded_conv_general_dilated} if self.banded_stem else {}
    x = nn.SpectralNorm(nn.Conv(self.width, (self.kernel_size,) * 2, padding="VALID",
                                kernel_init=w_init, bias_init=nn.initializers.zeros,
                                name="conv0", **stem), name="sn_conv0")(
        x, update_stats=update_stats)
    dense = lambda f, name: nn.SpectralNorm(nn.Dense(
        f, kernel_init=w_init, bias_init=nn.initializers.zeros, name=name), name=f"sn_{name}")
    for i in range(1, self.n_layers - 1):
      x = dense(self.width, f"conv{i}")(x, update_stats=update_stats)
      x = nn.relu(BatchNormTrain(name=f"bn{i}")(x))
    x = dense(1, f"conv{self.n_layers - 1}")(x, update_stats=update_stats)
    return nn.sigmoid(x)


def _models(cfg: DualSRConfig):
  return (UpGenerator(width=cfg.up_width, depth=cfg.up_depth),
          DownGenerator(structure=tuple(cfg.dn_structure), width=cfg.dn_width),
          DownDiscriminator(width=cfg.d_width, kernel_size=cfg.d_kernel,
                            n_layers=cfg.d_layers, weight_init=cfg.d_init))


def downscale(gen: DownGenerator, params, x: jax.Array, size: int, composed: bool = True,
              kernel: Optional[jax.Array] = None) -> jax.Array:
  """G_DN on a batch, `[N, H, W, 3] -> [N, (H - size) // 2 + 1, ..., 3]`.

  `composed`: one correlation with G_DN's kernel, stride 2 (`kernelgan.downscale`; the
  same map as the layers, whose stride on the 3x3 layer commutes with the 1x1 ones).
  """
  k = kernelgan.generator_kernel(gen, params, size) if composed and kernel is None else kernel
  return jax.vmap(lambda im: kernelgan.downscale(gen, params, im, size, composed, kernel=k))(x)


# ------------------------------------------------------------------------------
# Losses.
# ------------------------------------------------------------------------------


def interp_mask(bic: jax.Array) -> jax.Array:
  """`1 - clamp(Sobel(bic), 0, 1)`, `[N, H, W, C] -> [N, H, W, C]` (constant).

  The official `torch_sobel.Sobel` (kornia's): per colour channel, the unnormalised 3x3
  Sobel pair ([-1, 0, 1] x [1, 2, 1]) with zero padding, magnitude sqrt(gx^2 + gy^2), on
  [0, 1] images. (`ops.sobel_magnitude` mirrors its borders, as IKE's `edge_detect`.)
  """
  p = jnp.pad(bic, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dx = p[:, :, 2:] - p[:, :, :-2]
  gx = dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]
  dy = p[:, 2:] - p[:, :-2]
  gy = dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]
  return jax.lax.stop_gradient(1.0 - jnp.clip(jnp.sqrt(gx * gx + gy * gy), 0.0, 1.0))


def shave_to(a: jax.Array, b: jax.Array) -> jax.Array:
  """`a [N, H, W, C]` cropped symmetrically to `b`'s H, W (official `shave_a2b`)."""
  dr, dc = a.shape[1] - b.shape[1], a.shape[2] - b.shape[2]
  return a[:, dr // 2:a.shape[1] - dr + dr // 2, dc // 2:a.shape[2] - dc + dc // 2]


def _mse_to(x: jax.Array, target: float) -> jax.Array:
  """LSGAN: `mean (D - target)^2` (official `GANLoss`, MSE)."""
  return jnp.mean(jnp.square(x - target))


# ------------------------------------------------------------------------------
# State and the training step.
# ------------------------------------------------------------------------------


class DualSRState(struct.PyTreeNode):
  """The whole training state: the three networks, their Adam states, the learner, step.

  `d` holds D's `params` and `batch_stats` (spectral-norm vectors); `lam` the learner's
  weights and counters (`kernelgan._learner`'s).
  """
  step: jax.Array
  up: PyTree
  dn: PyTree
  d: PyTree
  opt: dict
  lam: dict
  bad_step: jax.Array


def _raw_spectral_init(variables: dict) -> dict:
  """D's variables with each spectral-norm kernel as drawn, not divided by its sigma.

  Flax's `SpectralNorm` stores the normalised kernel W / sigma(W) as the initial parameter
  (`map_variables(init=True)` writes the transformed value back); torch's `spectral_norm`
  keeps the drawn `weight_orig`. The init stored the sigma it divided by, so W comes back
  exactly; the forward pass is the same, but Adam's steps are relative to W's scale.
  """
  params = dict(variables["params"])
  for sn_name, stats in variables["batch_stats"].items():
    name = sn_name.removeprefix("sn_")
    layer = dict(params[name])
    layer["kernel"] = layer["kernel"] * stats[f"{name}/kernel/sigma"]
    params[name] = layer
  return {**variables, "params": params}


def _tx(cfg: DualSRConfig):
  return optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=1e-8)  # torch Adam's defaults


def create_state(key: jax.Array, cfg: DualSRConfig) -> DualSRState:
  g_up, g_dn, disc = _models(cfg)
  k_up, k_dn, k_d = jax.random.split(key, 3)
  up = g_up.init(k_up, jnp.zeros((1, cfg.lr_crop, cfg.lr_crop, 3)))["params"]
  dn = g_dn.init(k_dn, jnp.zeros((3, cfg.crop, cfg.crop, 1)))["params"]
  d = _raw_spectral_init(disc.init(k_d, jnp.zeros((1, cfg.dn_out, cfg.dn_out, 3)),
                                   update_stats=True))
  tx = _tx(cfg)
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  lam = {"bicubic": f32(cfg.lambda_bicubic), "centralized": f32(0.0), "sparse": f32(0.0),
         "bic_count": jnp.zeros((), jnp.int32), "similar": jnp.zeros((), bool),
         "inserted": jnp.zeros((), bool)}
  return DualSRState(step=jnp.zeros((), jnp.int32), up=up, dn=dn, d=d,
                     opt={"up": tx.init(up), "dn": tx.init(dn), "d": tx.init(d["params"])},
                     lam=lam, bad_step=jnp.full((), -1, jnp.int32))


def learning_rates(cfg: DualSRConfig, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """G_UP's, G_DN's and D_DN's lr at iteration t (official `Learner.update`).

  G_UP's StepLR is stepped after every iteration: `1e-3 * 0.5 ** (t // 750)`. G_DN's and
  D_DN's are divided by 4 after iterations 750, 1500, ...: from iteration 751 on.
  """
  t = jnp.asarray(t)
  up = cfg.lr_up * cfg.up_decay ** (t // cfg.up_decay_every).astype(jnp.float32)
  decay = cfg.dn_decay ** (jnp.maximum(t - 1, 0) // cfg.dn_decay_every).astype(jnp.float32)
  return up, cfg.lr_dn / decay, cfg.lr_d / decay


def sample_batch(key: jax.Array, image: jax.Array, p_hr, p_lr, cfg: DualSRConfig):
  """`cfg.batch` crop pairs: HR `[B, crop, crop, 3]`, LR `[B, crop/2, crop/2, 3]` and the LR's
  MATLAB-bicubic x2 `[B, crop, crop, 3]` (official `DataGenerator.__getitem__`)."""
  def one(k):
    hr, lr = patches.sample_crops(k, image, p_hr, p_lr, cfg.crop, cfg.lr_crop, align=2)
    return hr, lr, ops.imresize(lr, 2.0, "matlab")
  return jax.vmap(one)(jax.random.split(key, cfg.batch))


def train_step(state: DualSRState, image: jax.Array, p_hr, p_lr, key: jax.Array, *,
               cfg: DualSRConfig) -> tuple[DualSRState, dict]:
  """One DualSR iteration: the generators' step, D's step, the learner.

  Args:
    image: `[H, W, 3]` in [0, 1] (border shaved, H and W even).
    p_hr, p_lr: centre samplers for the HR (`cfg.crop`) and LR (`cfg.crop // 2`) crops.
    key: the run's key, folded with the step.
  """
  g_up, g_dn, disc = _models(cfg)
  tx = _tx(cfg)
  t = state.step
  real_hr, real_lr, real_bic = sample_batch(jax.random.fold_in(key, t), image, p_hr, p_lr, cfg)
  lr_up, lr_dn, lr_d = learning_rates(cfg, t)
  lam = state.lam
  size = cfg.kernel_size
  mask = interp_mask(real_bic)

  def g_loss(up_params, dn_params):
    k = kernelgan.generator_kernel(g_dn, dn_params, size)  # for the constraints and the composed G_DN
    up = lambda x: g_up.apply({"params": up_params}, x)
    dn = lambda x: downscale(g_dn, dn_params, x, size, cfg.composed, kernel=k)
    fake_hr = up(real_lr)
    rec_lr = dn(fake_hr)
    fake_lr = dn(real_hr)
    rec_hr = up(fake_lr)
    # D's spectral norm runs its power iteration in this call too (the official D stays in
    # train mode); its updated vectors go on to the D step.
    d_map, d_vars = disc.apply(state.d, fake_lr, update_stats=True, mutable=["batch_stats"])
    l_gan = _mse_to(d_map, 1.0)
    l_cyc_f = jnp.mean(jnp.abs(rec_lr - shave_to(real_lr, rec_lr)))
    l_cyc_b = jnp.mean(jnp.abs(rec_hr - shave_to(real_hr, rec_hr)))
    l_interp = jnp.mean(jnp.abs(fake_hr * mask - real_bic * mask))
    c = kernelgan.kernel_constraints(k, size)
    l_bic = jnp.mean(jax.vmap(lambda a, b: kernelgan.bicubic_loss(a, b, cfg.bicubic_kind))(
        real_hr, fake_lr))
    reg = (lam["bicubic"] * l_bic + cfg.lambda_sum2one * c["sum2one"]
           + cfg.lambda_boundaries * c["boundaries"]
           + lam["centralized"] * c["centralized"] + lam["sparse"] * c["sparse"])
    total = (l_gan + cfg.lambda_cycle * (l_cyc_f + l_cyc_b) + cfg.lambda_interp * l_interp
             + cfg.lambda_regularization * reg)
    m = {"g_gan": l_gan, "cycle_fwd": l_cyc_f, "cycle_bwd": l_cyc_b, "interp": l_interp,
         "bicubic": l_bic, **c, "reg": reg, "g_total": total}
    return total, (m, jax.lax.stop_gradient(fake_lr), d_vars["batch_stats"])

  (_, (m_g, fake_lr, d_stats)), (g_up_grad, g_dn_grad) = jax.value_and_grad(
      g_loss, argnums=(0, 1), has_aux=True)(state.up, state.dn)
  step = lambda p, u, lr: jax.tree_util.tree_map(lambda a, b: a - lr * b, p, u)
  upd, opt_up = tx.update(g_up_grad, state.opt["up"], state.up)
  up_params = step(state.up, upd, lr_up)
  upd, opt_dn = tx.update(g_dn_grad, state.opt["dn"], state.dn)
  dn_params = step(state.dn, upd, lr_dn)

  real = shave_to(real_lr, fake_lr)

  def d_loss(params):
    # Two calls as the official code: BatchNorm statistics and power iterations per call.
    p_fake, v = disc.apply({"params": params, "batch_stats": d_stats}, fake_lr,
                           update_stats=True, mutable=["batch_stats"])
    p_real, v = disc.apply({"params": params, **v}, real, update_stats=True,
                           mutable=["batch_stats"])
    return 0.5 * (_mse_to(p_real, 1.0) + _mse_to(p_fake, 0.0)), v

  (l_d, d_vars), d_grad = jax.value_and_grad(d_loss, has_aux=True)(state.d["params"])
  upd, opt_d = tx.update(d_grad, state.opt["d"], state.d["params"])
  d_params = step(state.d["params"], upd, lr_d)

  new_lam = kernelgan._learner(lam, t, m_g["bicubic"], cfg)
  metrics = {**m_g, "d": l_d, "lr_up": lr_up, "lr_dn": lr_dn, "lr_d": lr_d,
             "lambda_bicubic": lam["bicubic"]}
  finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
  bad = jnp.where((state.bad_step < 0) & ~finite, t, state.bad_step)
  return state.replace(step=t + 1, up=up_params, dn=dn_params,
                       d={"params": d_params, **d_vars},
                       opt={"up": opt_up, "dn": opt_dn, "d": opt_d}, lam=new_lam,
                       bad_step=bad), metrics


@functools.lru_cache(maxsize=8)
def make_train_step(cfg: DualSRConfig) -> Callable:
  return jax.jit(functools.partial(train_step, cfg=cfg), donate_argnums=0)


# ------------------------------------------------------------------------------
# Fit and inference.
# ------------------------------------------------------------------------------


def prepare(image01: np.ndarray, cfg: DualSRConfig) -> np.ndarray:
  """Shaves `cfg.shave` px off every side and crops H, W to even (official `shave_edges`).

  Raises:
    ValueError: the image is smaller than the HR crop.
  """
  x = np.asarray(image01, np.float32)
  if cfg.shave and min(x.shape[:2]) >= 2 * cfg.shave + cfg.crop:
    x = x[cfg.shave:-cfg.shave, cfg.shave:-cfg.shave]
  h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
  if min(h, w) < cfg.crop:
    raise ValueError(f"image is {x.shape[1]}x{x.shape[0]} px but DualSR needs at least "
                     f"{cfg.crop}x{cfg.crop} (its HR crop)")
  return x[:h, :w]


@functools.partial(jax.jit, static_argnames=("width", "depth"))
def _upscale(params, x: jax.Array, *, width: int, depth: int) -> jax.Array:
  y = UpGenerator(width=width, depth=depth).apply({"params": params}, x[None])[0]
  return jnp.clip(y, 0.0, 1.0)


def super_resolve(params, lr01: np.ndarray, cfg: DualSRConfig,
                  tile: Optional[int] = None) -> np.ndarray:
  """G_UP on the whole image, `[h, w, 3]` in [0, 1] -> `[2h, 2w, 3]` in [0, 1] (`DualSR.eval`);
  on overlapping tiles of side `tile` when given (`ikejax.tiles`)."""
  fn = lambda x: _upscale(params, jnp.asarray(x, jnp.float32), width=cfg.up_width,
                          depth=cfg.up_depth)
  x = np.asarray(lr01, np.float32)
  out = tiles.map_tiles(fn, x, 2, tile) if tile else fn(x)
  return np.asarray(out, np.float64)


@dataclasses.dataclass
class DualSRResult:
  state: DualSRState
  sr01: np.ndarray           # `[2h, 2w, 3]` in [0, 1].
  kernel_x2: np.ndarray      # G_DN's kernel, `[13, 13]`, raw (official `save_final_kernel`).
  history: list[dict]
  compile_seconds: float
  train_seconds: float
  inference_seconds: float


def fit(image01: np.ndarray, cfg: DualSRConfig, key: jax.Array, *,
        on_log: Optional[Callable[[int, dict], None]] = None,
        on_compiled: Optional[Callable[[float], None]] = None,
        tile: Optional[int] = None) -> DualSRResult:
  """Trains DualSR on one `[h, w, 3]` image in [0, 1]; returns G_UP's SR (on tiles of side
  `tile`, None: whole) and G_DN's kernel.

  Raises:
    ValueError: the image is smaller than the crop.
    loop.NonFiniteLossError: a loss became NaN or inf.
  """
  cfg = cfg.validate()
  x = prepare(image01, cfg)
  k_init, k_step = jax.random.split(key)
  p_hr, p_lr = patches.crop_samplers(x.astype(np.float64), cfg.crop, cfg.lr_crop, 2,
                                     cfg.crop_map)
  state = loop.run_once(create_state, k_init, cfg=cfg)
  # One executable for every iteration count and log interval of a config.
  step_cfg = cfg.replace(iters=1, log_every=1)
  res = loop.fit_loop(
      make_train_step(step_cfg), state, (jnp.asarray(x), p_hr, p_lr, k_step),
      iters=cfg.iters, log_every=cfg.log_every,
      compile_key=("dualsr", step_cfg, jax.config.values["jax_disable_most_optimizations"]),
      bad_steps=lambda st: st.bad_step, on_compiled=on_compiled,
      on_log=None if on_log is None else lambda done, per_job, _: on_log(done, per_job[0]))
  state = res.state
  t0 = time.perf_counter()
  sr01 = super_resolve(state.up, image01, cfg, tile)
  inference = time.perf_counter() - t0
  _, g_dn, _ = _models(cfg)
  k = np.asarray(kernelgan.generator_kernel(g_dn, state.dn, cfg.kernel_size), np.float64)
  return DualSRResult(state=state, sr01=sr01, kernel_x2=k, history=res.histories[0],
                      compile_seconds=res.compile_seconds, train_seconds=res.train_seconds,
                      inference_seconds=inference)
