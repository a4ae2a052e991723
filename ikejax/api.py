"""The Python API: one call from an image (array or path) to its super-resolution.

  import ikejax
  out = ikejax.super_resolve("lr.png", scale=2)          # or a [H, W, 3] uint8 array
  out.sr, out.kernel, out.llr, out.record

Nothing is written to disk and no flag is registered. `method`: `"ike"` (the zero-shot
flow, `preset` one of `ikejax.configs.PRESETS`, `default` unless given) or one of the
zero-parameter filters `"bicubic"`, `"sharpen"` (`ikejax.filters`). KernelGAN and ISSR-DIL
run through the command line (`--method`) for now.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Union

import numpy as np

from ikejax import filters, image_io, spectral

ImageLike = Union[str, os.PathLike, np.ndarray]


@dataclasses.dataclass
class SuperResolution:
  """What `super_resolve` returns.

  Attributes:
    sr: `[s*H, s*W, 3]` pixels, the input's dtype (uint8 or uint16).
    kernel: the degradation kernel the run used or learned (operator window,
      `ikejax.kernel`), or None for the filters.
    llr: `[H/s, W/s, 3]` pixels of the learned downscale X_LLR, or None.
    record: config, validation, timings and kernel info (as a CLI run's JSON record).
  """
  sr: np.ndarray
  kernel: Optional[np.ndarray]
  llr: Optional[np.ndarray]
  record: dict


def _load(image: ImageLike) -> image_io.LoadedImage:
  """A path (read as the CLI does) or an `[H, W]`, `[H, W, 3]` uint8 / uint16 array."""
  if isinstance(image, (str, os.PathLike)):
    return image_io.read_image(image)
  a = np.asarray(image)
  if a.dtype not in (np.uint8, np.uint16):
    raise ValueError(f"an image array must be uint8 or uint16, got {a.dtype}")
  gray = a.ndim == 2
  if gray:
    a = np.repeat(a[..., None], 3, axis=-1)
  if a.ndim != 3 or a.shape[-1] != 3:
    raise ValueError(f"an image array must be [H, W] or [H, W, 3], got {a.shape}")
  return image_io.LoadedImage(pixels=a, bit_depth=8 if a.dtype == np.uint8 else 16,
                              was_gray=gray, path=None)


def estimate_kernel(image: ImageLike, scale: int = 2) -> tuple[np.ndarray, dict]:
  """The closed-form blind kernel of an LR image (`ikejax.spectral.estimate_kernel`)."""
  loaded = _load(image)
  pixels = loaded.pixels.astype(np.float64) * (255.0 / (2 ** loaded.bit_depth - 1))
  return spectral.estimate_kernel(pixels, scale)


def super_resolve(image: ImageLike, scale: int = 2, method: str = "ike",
                  preset: Optional[str] = None, seed: int = 0, **overrides
                  ) -> SuperResolution:
  """Super-resolves one LR image, zero-shot.

  Args:
    image: a path or an `[H, W(, 3)]` uint8 / uint16 array.
    scale: 2, 3 or 4.
    method: `"ike"`, `"bicubic"` or `"sharpen"`.
    preset: IKE's config preset (default: `"default"`).
    seed: IKE's PRNG seed.
    **overrides: `IKEConfig` fields (e.g. `iters=200`).

  Raises:
    ValueError: a bad method, preset, field, scale or image.
  """
  loaded = _load(image)
  x01 = loaded.pixels.astype(np.float64) / (2 ** loaded.bit_depth - 1)
  if method in filters.FILTERS:
    if overrides or preset:
      raise ValueError(f"method {method!r} has no settings")
    sr = filters.FILTERS[method](x01, scale)
    out = image_io.from_model_range(np.clip(sr, 0, 1) * 2 - 1, loaded.bit_depth)
    return SuperResolution(sr=out, kernel=None, llr=None,
                           record={"method": method, "scale": scale})
  if method != "ike":
    raise ValueError(f"unknown method {method!r}: the API runs 'ike', "
                     f"{', '.join(repr(f) for f in filters.FILTERS)}")
  import jax

  from ikejax import configs, infer, kernel, train
  cfg = configs.get_config(preset or "default", scale=scale, **overrides)
  h, w = loaded.pixels.shape[:2]
  cfg, warning = train.adapt_crop(cfg, h, w)
  given = spectral.son_kernel(cfg, loaded.pixels, loaded.bit_depth)
  x = image_io.to_model_range(loaded.pixels, loaded.bit_depth)
  t0 = time.perf_counter()
  res = train.fit(x, cfg, jax.random.key(seed), son_kernel=None if given is None else given[0])
  sr = infer.super_resolve(res.state, x, cfg)
  llr = infer.downscale(res.state, x, cfg)
  if given is None:
    k, k_info = kernel.ike_kernel(res.state.ema["flow"], cfg)
  else:
    k, k_info = given
  record = {"method": "ike", "preset": preset or "default", "seed": seed, "scale": scale,
            "config": dataclasses.asdict(cfg), "crop_warning": warning,
            "validation": res.validation, "kernel": k_info,
            "timings": {"compile_s": res.compile_seconds, "train_s": res.train_seconds,
                        "total_s": time.perf_counter() - t0},
            "final_losses": res.history[-1] if res.history else {}}
  return SuperResolution(sr=image_io.from_model_range(sr, loaded.bit_depth),
                         kernel=np.asarray(k), llr=image_io.from_model_range(llr, loaded.bit_depth),
                         record=record)
