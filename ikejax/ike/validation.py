"""Internal validation: son/father reconstruction on LR crops held out of training.

Beyond the paper (docs/deviations.md). A zero-shot run has no ground truth, but it has
the pair its decoder is asked to invert: a father crop of the LR and its son, the father
degraded by the run's kernel (a known or estimated one, or the learned downscaler). A few
father crops are set aside before training (the most textured ones, as the training crops
are drawn from texture: `patches`), no training crop overlaps them, and the decoder's
reconstruction PSNR on them is recorded every `cfg.val_every` iterations. The fit keeps
the parameters of the best validated iteration (`cfg.keep_best`) and restarts a run that
has not left its initial output (`cfg.restarts`, `stuck`).

Shapes: fathers `[n, v, v, 3]` in [-1, 1] (`v = cfg.val_crop`), sons `[n, v/s, v/s, 3]`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ikejax import ops
from ikejax.ike.configs import IKEConfig
from ikejax.ike.model import IKEModel


class ValidationSet(NamedTuple):
  """Held-out father crops of one image; `weights` are 0 on padding repeats.

  Attributes:
    fathers: `[n, v, v, 3]` LR crops in [-1, 1].
    weights: `[n]` 1 for a held-out crop, 0 for a repeat that pads to `cfg.val_crops`.
    held_out: scalar bool, False when the image was too small to hold crops out
      (the crops then overlap training crops).
  """
  fathers: jax.Array
  weights: jax.Array
  held_out: jax.Array


def _window_mask(shape: tuple[int, int], top_left: np.ndarray, lo: int, hi: int) -> np.ndarray:
  """`[H, W]` bool: centres `c` with `top_left - lo <= c < top_left + hi` on both axes."""
  mask = np.zeros(shape, bool)
  r0, c0 = np.maximum(top_left - lo, 0)
  r1, c1 = np.minimum(top_left + hi, shape)
  mask[r0:r1, c0:c1] = True
  return mask


def _window_at(prob: np.ndarray, window: int, scale: int) -> np.ndarray:
  """Top-left `[2]` of the `window`-sided square centred on `prob`'s maximum, aligned to `scale`."""
  h, w = prob.shape
  centre = np.array(np.unravel_index(np.argmax(prob), prob.shape))
  tl = np.clip(centre - window // 2, 0, [max(h - window, 0), max(w - window, 0)])
  return tl - tl % scale


def holdout(p_g: np.ndarray, p_d: np.ndarray, window: int, g_crop: int, d_crop: int,
            scale: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Chooses up to `n` disjoint validation windows and removes them from training.

  Greedy on the G crop-centre map (`patches.crop_probability_maps`): the most
  probable centre gives a `window x window` square (corner aligned to `scale`),
  centres whose square would overlap it are dropped, and so on. Training centres
  whose G crop (`g_crop`) or D crop (`d_crop`) could overlap a window lose their
  mass. A window is only taken while the G map keeps at least half its mass.

  Args:
    p_g, p_d: `[H, W]` crop-centre maps of the G and D crops (each sums to 1).
    window: the side of a validation window.
    g_crop, d_crop: the sides of the training crops drawn from `p_g` and `p_d`.
    scale: corner alignment (the SR scale).
    n: windows wanted.

  Returns:
    `(top_lefts [m, 2], p_g, p_d)`, `m <= n`, the maps renormalised; `m = 0`
    leaves them unchanged.
  """
  h, w = p_g.shape
  pick = np.array(p_g, np.float64)
  kept_g, kept_d = np.array(p_g, np.float64), np.array(p_d, np.float64)
  # A crop of side q drawn at centre c starts within [c - q // 2 - (scale - 1), c - q // 2]
  # (`patches.sample_top_left` rounds down), so it can overlap [tl, tl + window) when
  # tl - (q - q // 2) < c < tl + window + q // 2 + scale.
  reach = lambda q: (q - q // 2, window + q // 2 + scale)
  corners = []
  for _ in range(n):
    if pick.max() <= 0:
      break
    tl = _window_at(pick, window, scale)
    new_g = np.where(_window_mask((h, w), tl, *reach(g_crop)), 0.0, kept_g)
    if new_g.sum() < 0.5 * p_g.sum():
      break
    corners.append(tl)
    kept_g = new_g
    kept_d = np.where(_window_mask((h, w), tl, *reach(d_crop)), 0.0, kept_d)
    pick = np.where(_window_mask((h, w), tl, *reach(window)), 0.0, pick)
  if not corners or kept_d.sum() <= 0:
    return np.zeros((0, 2), np.int64), p_g, p_d
  return (np.stack(corners), (kept_g / kept_g.sum()).astype(np.float32),
          (kept_d / kept_d.sum()).astype(np.float32))


def prepare(image: np.ndarray, p_g: np.ndarray, p_d: np.ndarray, cfg: IKEConfig
            ) -> tuple[Optional[ValidationSet], np.ndarray, np.ndarray]:
  """The validation set of one `[H, W, 3]` image in [-1, 1] and the training maps left.

  Returns `(None, p_g, p_d)` when `cfg.val_crops` is 0. When no window can be held
  out (a small image), the most textured window is used without holding it out.
  """
  n = cfg.val_crops
  if n == 0:
    return None, p_g, p_d
  m = cfg.scale * cfg.scale  # the son (v / s) is squeezed by the decoder too
  v = min(cfg.val_crop, cfg.crop) // m * m
  args = (v, cfg.crop, cfg.crop // cfg.scale, cfg.scale)
  corners, p_g_train, p_d_train = holdout(p_g, p_d, *args, n)
  held_out = len(corners) > 0
  if not held_out:  # too small to hold out: the most textured window, shared with training
    corners = _window_at(p_g, v, cfg.scale)[None]
    p_g_train, p_d_train = p_g, p_d
  crops = [np.asarray(image[r:r + v, q:q + v], np.float32) for r, q in corners]
  weights = [1.0] * len(crops) + [0.0] * (n - len(crops))
  crops += [crops[0]] * (n - len(crops))
  vset = ValidationSet(fathers=jnp.asarray(np.stack(crops)),
                       weights=jnp.asarray(weights, jnp.float32),
                       held_out=jnp.asarray(held_out))
  return vset, p_g_train, p_d_train


def reconstruction_psnr(params: dict, vset: ValidationSet, son_kernel: Optional[jax.Array], *,
                        cfg: IKEConfig, model: IKEModel) -> jax.Array:
  """RGB PSNR (dB, over the [-1, 1] range) of decode(son) against the held-out fathers.

  `params`: `{"flow", "up"}` (the state's `ema`, what inference uses). The son is
  the father degraded by `son_kernel` when given, else by the flow's forward pass.
  """
  def one(father):
    if son_kernel is None:
      son = model.encode(params["flow"], father)[0]
    else:
      son = ops.correlate_subsample(father, son_kernel, cfg.scale)
    u_in = son if cfg.u_input == "image" else model.encode(params["flow"], son)[1]
    sr = model.decode(params["flow"], son, model.upscale_z(params["up"], u_in))
    return jnp.mean((sr - father) ** 2)

  mse = jax.vmap(one)(vset.fathers)
  mse = jnp.sum(mse * vset.weights) / jnp.sum(vset.weights)
  return 10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-12))


def stuck(initial_db: float, best_db: float, cfg: IKEConfig) -> bool:
  """A run that gained less than `cfg.stuck_gain_db` over its initial output."""
  return best_db - initial_db < cfg.stuck_gain_db
