"""KernelGAN (Bell-Kligler, Shocher, Irani 2019): a deep linear generator learns the x2 kernel.

Follows the official code (sefibk/KernelGAN; reference.md Sec. 2; cited in
third_party/README.md):
  * G: linear convs [7, 5, 3, 1, 1, 1] x 64 channels, no bias, valid padding,
    the last 1x1 with stride 2; colours are a batch of three gray images.
    Its kernel (`generator_kernel`) is G's impulse response, 13x13.
  * D: the patch discriminator IKE also uses (`ikejax.nets.PatchDiscriminator`),
    on real LR crops of G's output size (26 for 64 crops), L1 GAN loss.
  * Kernel constraints: sum-to-one 0.5, bicubic 5 (decays), boundaries 0.5,
    centralised 0 -> 1, sparsity 0 -> 5; the learner's schedule: lr / 10
    every 750 iterations; once the bicubic loss is below 0.4 three times in a
    row, lambda_bicubic / 100 every 200 iterations (floor 5e-6), and when it
    falls below 5e-3 the centralised and sparsity terms switch on.
  * Adam(2e-4, beta1 0.5), 3000 iterations, 64 px G crops from the
    gradient-probability maps (`patches`), a 10 px border shaved first.
  * Output: the kernel with negligible taps zeroed (`zeroize_negligible`, the
    40th-largest rule) and its centre of mass moved onto the x2 grid
    (`degrade.kernel_shift` after padding, as KernelGAN's `kernel_shift`:
    17x17); x4 is the analytic kernel of the x2 one (cropped as KernelGAN).

Kernels are in the operator-window convention of `ikejax.imaging.kernels`.
Deviation (switch `bicubic_kind='reference'`): the official bicubic
constraint sums the correlations of all three colour channels into each
output channel (its `k.expand(C, C, ...)`), so its target is ~3x the image;
the default compares each channel with its own MATLAB bicubic downscale.

The whole iteration (G step, D step, learner update) is one jit-compiled
function of an explicit state pytree; the learner's thresholds are `jnp.where`s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from ikejax import loop, ops, patches
from ikejax.ike import losses
from ikejax.imaging import degrade
from ikejax.nets import PatchDiscriminator, xavier_normal

PyTree = Any


@dataclasses.dataclass(frozen=True)
class KernelGANConfig:
  """KernelGAN settings (official `configs.py`, `kernelGAN.py`, `learner.py`)."""
  iters: int = 3000
  crop: int = 64                          # G input crop.
  crop_map: str = "official"              # crop-centre gradient maps (patches.GRADIENT_MAPS).
  g_structure: tuple = (7, 5, 3, 1, 1, 1)
  g_width: int = 64
  d_width: int = 64
  lr: float = 2e-4                        # G and D.
  b1: float = 0.5
  b2: float = 0.999
  lr_decay_every: int = 750
  lambda_sum2one: float = 0.5
  lambda_bicubic: float = 5.0
  lambda_boundaries: float = 0.5
  lambda_centralized_end: float = 1.0
  lambda_sparse_end: float = 5.0
  bicubic_threshold: float = 0.4          # "similar to bicubic" after 3 iterations below it.
  lambda_update_every: int = 200
  lambda_bicubic_decay: float = 100.0
  lambda_bicubic_min: float = 5e-6
  bicubic_kind: str = "exact"             # 'exact' or 'reference' (channel-summing quirk).
  composed: bool = True                   # run G as its one 13x13 stride-2 kernel (same map).
  n_filtering: int = 40                   # zeroize_negligible's n.
  shave: int = 10                         # border removed before cropping (synthetic images).
  d_noise: float = 1 / 255                # randn / 255 on D's inputs (see `value_range`).
  value_range: str = "unit"               # [0, 1]; "signed": [-1, 1] as the official `im2tensor`.
  log_every: int = 50

  def replace(self, **kw) -> "KernelGANConfig":
    return dataclasses.replace(self, **kw)

  @property
  def kernel_size(self) -> int:
    """Support of G's impulse response: 1 + sum(k - 1) = 13."""
    return 1 + sum(k - 1 for k in self.g_structure)

  @property
  def g_out(self) -> int:
    """G's output side for a `crop` input (26 for 64): D's input crop."""
    return (self.crop - self.kernel_size + 1 + 1) // 2

  def validate(self) -> "KernelGANConfig":
    if self.iters < 1:
      raise ValueError(f"iters must be >= 1, got {self.iters}")
    if self.value_range not in ("signed", "unit"):
      raise ValueError(f"value_range must be 'signed' or 'unit', got {self.value_range!r}")
    if self.bicubic_kind not in ("exact", "reference"):
      raise ValueError(f"bicubic_kind must be 'exact' or 'reference', got {self.bicubic_kind!r}")
    if self.crop_map not in patches.GRADIENT_MAPS:
      raise ValueError(f"crop_map must be one of {patches.GRADIENT_MAPS}, got {self.crop_map!r}")
    if self.g_out < 7 + 1:
      raise ValueError(f"crop {self.crop} is too small: G's output must exceed D's 7x7 field")
    return self


PRESETS = {"paper": KernelGANConfig(),
           "tiny": KernelGANConfig(iters=6, crop=32, g_width=8, d_width=8, log_every=2)}


class DeepLinearGenerator(nn.Module):
  """`[N, H, W, 1] -> [N, (H - 12) / 2, (W - 12) / 2, 1]`: a linear x2 downscaler.

  Valid convs without bias or activation (official `networks.Generator`); the
  1x1 layers are `Dense` (the same map) and the final stride-2 1x1 conv is a
  `[::2, ::2]` subsampling followed by it. Init: Xavier-normal, gain 0.1.
  """
  structure: tuple = (7, 5, 3, 1, 1, 1)
  width: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = xavier_normal(0.1)
    n = len(self.structure)
    for i, k in enumerate(self.structure):
      feats = 1 if i == n - 1 else self.width
      if i == n - 1:
        x = x[:, ::2, ::2]  # stride 2 of a 1x1 conv = subsample, then the 1x1 map
      if k == 1:
        x = nn.Dense(feats, use_bias=False, kernel_init=init, name=f"conv{i}")(x)
      else:
        x = nn.Conv(feats, (k, k), padding="VALID", use_bias=False, kernel_init=init,
                    name=f"conv{i}")(x)
    return x


def generator_kernel(gen: DeepLinearGenerator, params, size: int) -> jax.Array:
  """G's kernel: `G(x)[0, 0] = sum_u k[u] x[u]` on a `[size, size]` input (differentiable).

  G is linear, so `k` is the gradient of its single output pixel (official
  `calc_curr_k` gets it by a full convolution of a delta, then a flip).
  `k` is in the operator-window convention: `G(x)[i] = sum_u k[u] x[2i + u]`.
  """
  f = lambda x: gen.apply({"params": params}, x)[0, 0, 0, 0]
  return jax.grad(f)(jnp.zeros((1, size, size, 1), jnp.float32))[0, :, :, 0]


def downscale(gen: DeepLinearGenerator, params, x: jax.Array, size: int,
              composed: bool = True, kernel: Optional[jax.Array] = None) -> jax.Array:
  """G on an RGB image: `[H, W, 3] -> [(H - size + 2) // 2, (W - size + 2) // 2, 3]`.

  `composed=True` correlates with G's kernel (`generator_kernel`, stride 2,
  valid): G is linear without bias and every layer is valid, so this is the
  same function (to float rounding) at a fraction of the cost, and gradients
  reach the layers through the kernel. `False` runs the layers (official).
  `kernel`: G's kernel when the caller already has it.
  """
  if not composed:
    return _from_colour_batch(gen.apply({"params": params}, _colour_batch(x)))
  k = generator_kernel(gen, params, size) if kernel is None else kernel
  return ops.conv2d_single(x, k, stride=2, padding="VALID")


def penalty_mask(size: int, scale: float = 30.0) -> np.ndarray:
  """Boundary penalty (official `create_penalty_mask(k_size, 30)`): 0 in the centre.

  `scale * (1 - g / max g)` with g a Gaussian of sigma `size`, zeroed on the
  central `[m:-m, m:-m]` square, `m = (size - (size // 2 + size % 2)) // 2 - 1`.
  """
  z = np.arange(-size // 2 + 1, size // 2 + 1)
  g1 = np.exp(-z ** 2 / (2.0 * size ** 2))
  g = np.outer(g1, g1)
  mask = 1.0 - g / g.max()
  margin = (size - (size // 2 + size % 2)) // 2 - 1
  mask[margin:-margin, margin:-margin] = 0.0
  return scale * mask


def _safe_pow(x: jax.Array, p: float) -> jax.Array:
  """`|x| ** p` with a zero (not NaN) gradient at exactly 0."""
  a = jnp.abs(x)
  safe = jnp.where(a > 0, a, 1.0)
  return jnp.where(a > 0, safe ** p, 0.0)


def kernel_constraints(k: jax.Array, size: int) -> dict:
  """The official kernel losses (`loss.py`), unweighted.

  `sum2one`: |1 - sum k|; `boundaries`: mean |k * mask|; `centralized`: mean
  squared distance of the centre of mass from `size // 2 + 0.5` (the x2 grid,
  `CentralizedLoss` with scale 1/2); `sparse`: mean |k|^0.2.
  """
  idx = jnp.arange(size, dtype=jnp.float32)
  total = jnp.sum(k)
  com = jnp.stack([jnp.sum(jnp.sum(k, 1) * idx), jnp.sum(jnp.sum(k, 0) * idx)]) / total
  centre = size // 2 + 0.5 * (2 - size % 2)
  return {"sum2one": jnp.abs(1.0 - total),
          "boundaries": jnp.mean(jnp.abs(k * penalty_mask(size))),
          "centralized": jnp.mean((com - centre) ** 2),
          "sparse": jnp.mean(_safe_pow(k, 0.2))}


class KernelGANState(struct.PyTreeNode):
  """The whole training state: networks, Adam states, learner schedule, step.

  `lam` holds the learner's mutable weights (`bicubic`, `centralized`,
  `sparse`) and its counters (`bic_count`, `similar`, `inserted`).
  """
  step: jax.Array
  g: PyTree
  d: PyTree
  opt: dict
  lam: dict
  bad_step: jax.Array


def _models(cfg: KernelGANConfig):
  return (DeepLinearGenerator(structure=tuple(cfg.g_structure), width=cfg.g_width),
          PatchDiscriminator(width=cfg.d_width))


def create_state(key: jax.Array, cfg: KernelGANConfig) -> KernelGANState:
  gen, disc = _models(cfg)
  k_g, k_d = jax.random.split(key)
  g = gen.init(k_g, jnp.zeros((3, cfg.crop, cfg.crop, 1)))["params"]
  d = disc.init(k_d, jnp.zeros((1, cfg.g_out, cfg.g_out, 3)), update_stats=True)
  tx = optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=1e-8)
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  lam = {"bicubic": f32(cfg.lambda_bicubic), "centralized": f32(0.0), "sparse": f32(0.0),
         "bic_count": jnp.zeros((), jnp.int32), "similar": jnp.zeros((), bool),
         "inserted": jnp.zeros((), bool)}
  return KernelGANState(step=jnp.zeros((), jnp.int32), g=g, d=d,
                        opt={"g": tx.init(g), "d": tx.init(d["params"])}, lam=lam,
                        bad_step=jnp.full((), -1, jnp.int32))


def _lr(cfg: KernelGANConfig, t: jax.Array) -> jax.Array:
  """The learner divides lr by 10 *after* iterations 750, 1500, ...: iteration t uses this."""
  return cfg.lr * 0.1 ** (jnp.maximum(t - 1, 0) // cfg.lr_decay_every).astype(jnp.float32)


def _learner(lam: dict, t: jax.Array, loss_bic: jax.Array, cfg: KernelGANConfig) -> dict:
  """Official `Learner.update(iteration, gan)` as a pure function."""
  below = loss_bic < cfg.bicubic_threshold
  active = t > 0
  # Not yet similar: count iterations below the threshold (3 in a row -> similar).
  becomes_similar = active & ~lam["similar"] & below & (lam["bic_count"] >= 2)
  count = jnp.where(active & ~lam["similar"],
                    jnp.where(below, jnp.where(lam["bic_count"] >= 2, lam["bic_count"],
                                               lam["bic_count"] + 1), 0), lam["bic_count"])
  # Similar (from a previous iteration): decay lambda_bicubic every 200 iterations.
  decay = (active & lam["similar"] & (t % cfg.lambda_update_every == 0)
           & (lam["bicubic"] > cfg.lambda_bicubic_min))
  bic = jnp.where(decay, jnp.maximum(lam["bicubic"] / cfg.lambda_bicubic_decay,
                                     cfg.lambda_bicubic_min), lam["bicubic"])
  insert = decay & ~lam["inserted"] & (bic < 5e-3)
  return {"bicubic": bic,
          "centralized": jnp.where(insert, cfg.lambda_centralized_end, lam["centralized"]),
          "sparse": jnp.where(insert, cfg.lambda_sparse_end, lam["sparse"]),
          "bic_count": count, "similar": lam["similar"] | becomes_similar,
          "inserted": lam["inserted"] | insert}


def _colour_batch(x: jax.Array) -> jax.Array:
  """`[H, W, 3] -> [3, H, W, 1]` (official `swap_axis`)."""
  return jnp.transpose(x, (2, 0, 1))[..., None]


def _from_colour_batch(y: jax.Array) -> jax.Array:
  return jnp.transpose(y[..., 0], (1, 2, 0))


def bicubic_loss(g_in: jax.Array, g_out: jax.Array, kind: str) -> jax.Array:
  """MSE between G's output and the x2 bicubic downscale of its input, aligned.

  G's output pixel i sees input pixels `2i .. 2i + 12`, centred on the
  bicubic-downscaled pixel `i + 3`: the downscale is shaved by 3 px.
  """
  if kind == "reference":
    return losses.bicubic_warmup_loss(g_in, g_out, None, kind="reference", scale=2)
  down = ops.imresize(g_in, 0.5, "matlab")
  dr = (down.shape[0] - g_out.shape[0]) // 2
  return jnp.mean((g_out - down[dr:dr + g_out.shape[0], dr:dr + g_out.shape[1]]) ** 2)


def train_step(state: KernelGANState, image: jax.Array, p_g, p_d, key: jax.Array, *,
               cfg: KernelGANConfig) -> tuple[KernelGANState, dict]:
  """One KernelGAN iteration: G step, D step, learner update.

  Args:
    image: `[H, W, 3]` in [-1, 1] (`value_range='signed'`) or [0, 1] (border
      already shaved, H and W even).
    p_g, p_d: centre samplers for the G (`cfg.crop`) and D (`cfg.g_out`) crops.
    key: the run's key, folded with the step.
  """
  gen, disc = _models(cfg)
  tx = optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=1e-8)
  t = state.step
  k_crop, k_fake, k_real = jax.random.split(jax.random.fold_in(key, t), 3)
  g_in, d_in = patches.sample_crops(k_crop, image, p_g, p_d, cfg.crop, cfg.g_out, align=2)
  lr = _lr(cfg, t)
  lam = state.lam
  size = cfg.kernel_size

  def g_loss(params):
    k = generator_kernel(gen, params, size)  # for the constraints and the composed G
    g_out = downscale(gen, params, g_in, size, cfg.composed, kernel=k)
    d_map, _ = disc.apply(state.d, g_out[None], update_stats=False, mutable=["batch_stats"])
    l_gan = losses.gan_loss(d_map, real=True)
    c = kernel_constraints(k, size)
    l_bic = bicubic_loss(g_in, g_out, cfg.bicubic_kind)
    total = (l_gan + lam["bicubic"] * l_bic + cfg.lambda_sum2one * c["sum2one"]
             + cfg.lambda_boundaries * c["boundaries"]
             + lam["centralized"] * c["centralized"] + lam["sparse"] * c["sparse"])
    return total, {"g_gan": l_gan, "bicubic": l_bic, **c, "g_total": total}

  (_, m_g), grads = jax.value_and_grad(g_loss, has_aux=True)(state.g)
  updates, opt_g = tx.update(grads, state.opt["g"], state.g)
  g = jax.tree_util.tree_map(lambda p, u: p - lr * u, state.g, updates)

  fake = jax.lax.stop_gradient(downscale(gen, g, g_in, size, cfg.composed))
  # Official: the real crop gets randn / 255 in [0, 1] units before `im2tensor`
  # (2 / 255 in [-1, 1]), G's output randn / 255 in the tensor's units.
  real_noise = 2 * cfg.d_noise if cfg.value_range == "signed" else cfg.d_noise
  fake = fake + cfg.d_noise * jax.random.normal(k_fake, fake.shape)
  real = d_in + real_noise * jax.random.normal(k_real, d_in.shape)

  def d_loss(params):
    maps, stats = disc.apply({"params": params, "batch_stats": state.d["batch_stats"]},
                             jnp.stack([real, fake]), update_stats=True,
                             mutable=["batch_stats"])
    return 0.5 * (losses.gan_loss(maps[0], True) + losses.gan_loss(maps[1], False)), stats

  (l_d, stats), grads = jax.value_and_grad(d_loss, has_aux=True)(state.d["params"])
  updates, opt_d = tx.update(grads, state.opt["d"], state.d["params"])
  d_params = jax.tree_util.tree_map(lambda p, u: p - lr * u, state.d["params"], updates)

  new_lam = _learner(lam, t, m_g["bicubic"], cfg)
  metrics = {**m_g, "d": l_d, "lr": lr, "lambda_bicubic": lam["bicubic"]}
  finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
  bad = jnp.where((state.bad_step < 0) & ~finite, t, state.bad_step)
  return state.replace(step=t + 1, g=g, d={"params": d_params, **stats},
                       opt={"g": opt_g, "d": opt_d}, lam=new_lam, bad_step=bad), metrics


def prepare(image01: np.ndarray, cfg: KernelGANConfig) -> np.ndarray:
  """Shaves `cfg.shave` px off every side and crops H, W to even (official `shave_edges`)."""
  x = np.asarray(image01, np.float32)
  if cfg.shave and min(x.shape[:2]) > 2 * cfg.shave + cfg.crop:
    x = x[cfg.shave:-cfg.shave, cfg.shave:-cfg.shave]
  h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
  if min(h, w) < cfg.crop:
    raise ValueError(f"image is {x.shape[1]}x{x.shape[0]} px but KernelGAN needs at least "
                     f"{cfg.crop}x{cfg.crop} (its G crop)")
  return x[:h, :w]


@functools.lru_cache(maxsize=8)
def make_train_step(cfg: KernelGANConfig) -> Callable:
  return jax.jit(functools.partial(train_step, cfg=cfg), donate_argnums=0)


@dataclasses.dataclass
class KernelGANResult:
  state: KernelGANState
  kernel_x2: np.ndarray      # G's raw kernel, `[13, 13]`.
  history: list[dict]
  compile_seconds: float
  train_seconds: float


def fit(image01: np.ndarray, cfg: KernelGANConfig, key: jax.Array, *,
        on_log: Optional[Callable[[int, dict], None]] = None,
        on_compiled: Optional[Callable[[float], None]] = None) -> KernelGANResult:
  """Trains KernelGAN on one `[H, W, 3]` image in [0, 1]; returns the state and G's kernel.

  Raises:
    ValueError: the image is smaller than the crop.
    loop.NonFiniteLossError: a loss became NaN or inf.
  """
  cfg = cfg.validate()
  x = prepare(image01, cfg)
  k_init, k_step = jax.random.split(key)
  p_g, p_d = patches.crop_samplers(x.astype(np.float64), cfg.crop, cfg.g_out, 2, cfg.crop_map)
  state = loop.run_once(create_state, k_init, cfg=cfg)  # 3 s, not 9 s op by op (paper preset)
  # The official code trains on 2x - 1: G has no bias, so the kernel sees the same
  # structure, but D and the GAN gradient see a DC level near 0 instead of ~0.45.
  image = jnp.asarray(2 * x - 1 if cfg.value_range == "signed" else x)
  # Cached per config and shapes; the XLA optimisation flag is part of the key.
  step_cfg = cfg.replace(log_every=50)
  res = loop.fit_loop(
      make_train_step(step_cfg), state, (image, p_g, p_d, k_step), iters=cfg.iters,
      log_every=cfg.log_every,
      compile_key=(step_cfg, jax.config.values["jax_disable_most_optimizations"]),
      bad_steps=lambda st: st.bad_step, on_compiled=on_compiled,
      on_log=None if on_log is None else lambda done, per_job, _: on_log(done, per_job[0]))
  state = res.state
  gen, _ = _models(cfg)
  k = np.asarray(generator_kernel(gen, state.g, cfg.kernel_size), np.float64)
  return KernelGANResult(state=state, kernel_x2=k, history=res.histories[0],
                         compile_seconds=res.compile_seconds, train_seconds=res.train_seconds)


def zeroize_negligible(k: np.ndarray, n: int = 40) -> np.ndarray:
  """Official `zeroize_negligible_val`: subtract 0.75 x the (n+1)-th largest tap, clip at 0, sum 1."""
  k = np.asarray(k, np.float64)
  floor = 0.75 * np.sort(k.ravel())[-n - 1]
  out = np.clip(k - floor, 0.0, None)
  return out / out.sum()


def final_kernels(raw: np.ndarray, scale: int, n: int = 40) -> np.ndarray:
  """The estimate for x`scale` from G's raw x2 kernel (official `post_process_k`, `analytic_kernel`).

  x2: zeroize, pad 2 px and move the centre of mass onto the x2 grid (17x17);
  x4: the analytic kernel of that, cropped by `k // 2` per side and
  renormalised (33x33), as KernelGAN's `--X4`.
  """
  k = zeroize_negligible(raw, n)
  k2 = degrade.kernel_shift(np.pad(k, 2), 2)
  k2 = np.clip(k2, 0.0, None)
  k2 /= k2.sum()
  if scale == 2:
    return k2
  if scale == 4:
    big = degrade.analytic_kernel(k2)
    c = k2.shape[0] // 2
    big = big[c:-c, c:-c]
    return big / big.sum()
  raise ValueError(f"KernelGAN estimates x2 kernels (and x4 analytically), not x{scale}")
