"""The Python API: one call from an image (array or path) to its super-resolution.

  import ikejax
  out = ikejax.super_resolve("lr.png", scale=2)          # or a [H, W, 3] uint8 array
  out.sr, out.kernel, out.llr, out.record

Nothing is written to disk and no flag is registered. Every method of the command line
runs here through the same `Method` objects (`ikejax.runs.methods`): `"ike"` (the zero-shot
flow, `preset` one of `ikejax.ike.configs.PRESETS`, `default` unless given), `"kernelgan"`,
`"issr-dil"`, `"zssr"` (on MATLAB's bicubic kernel; a given kernel needs the command line's
`--kernel`), `"kernelgan+zssr"` and the zero-parameter filters `"bicubic"`, `"sharpen"`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Union

import numpy as np

from ikejax.imaging import image_io, spectral

ImageLike = Union[str, os.PathLike, np.ndarray]


@dataclasses.dataclass
class SuperResolution:
  """What `super_resolve` returns.

  Attributes:
    sr: `[s*H, s*W, 3]` pixels, the input's dtype (uint8 or uint16).
    kernel: the degradation kernel the run used, learned or (filters) assumed, in the
      operator-window convention of `ikejax.imaging.kernels`.
    llr: `[H/s, W/s, 3]` pixels of the learned downscale X_LLR (IKE), or None.
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
  """The closed-form blind kernel of an LR image (`ikejax.imaging.spectral.estimate_kernel`)."""
  loaded = _load(image)
  pixels = loaded.pixels.astype(np.float64) * (255.0 / (2 ** loaded.bit_depth - 1))
  return spectral.estimate_kernel(pixels, scale)


def super_resolve(image: ImageLike, scale: int = 2, method: str = "ike",
                  preset: Optional[str] = None, seed: int = 0, tile: Optional[int] = None,
                  **overrides) -> SuperResolution:
  """Super-resolves one LR image, zero-shot, with any method of the tool.

  Args:
    image: a path or an `[H, W(, 3)]` uint8 / uint16 array.
    scale: 2, 3 or 4.
    method: a name of `ikejax.runs.methods.REGISTRY` (`"ike"`, `"kernelgan"`,
      `"issr-dil"`, `"zssr"`, `"kernelgan+zssr"`, `"dualsr"`, `"bicubic"`, `"sharpen"`).
    preset: the method's config preset (default: its default, IKE's `"default"`).
    seed: the PRNG seed.
    tile: whole-image inference on tiles of this side (`ikejax.tiles`; None: by image size
      and backend, 0: whole).
    **overrides: config fields (IKE: `IKEConfig`'s, e.g. `iters=200`; kernelgan: `iters`;
      zssr: `iters`, its most iterations per jump).

  Raises:
    ValueError: a bad method, preset, field, scale or image.
    ikejax.loop.NonFiniteLossError: training diverged.
  """
  from ikejax.loop import NonFiniteLossError
  from ikejax.runs import job as job_lib
  from ikejax.runs import methods
  m = methods.get(method)
  preset = preset or m.default_preset
  try:
    cfg = m.config(preset, scale, overrides)
  except TypeError as e:
    raise ValueError(str(e)) from None
  cfg = cfg.validate() if hasattr(cfg, "validate") else cfg
  loaded = _load(image)
  job = job_lib.Job(path=None, stem="image", outputs={}, loaded=loaded,
                    x=image_io.to_model_range(loaded.pixels, loaded.bit_depth))
  m.prepare(cfg, job)
  t0 = time.perf_counter()
  out = m.fit([job], seed, job_lib.Context(single=True, tile=tile))[0]
  if out.error is not None:
    raise NonFiniteLossError(out.error)
  record = {"method": m.name, "preset": preset, "seed": seed, "scale": scale,
            "config": m.settings(job.cfg), **out.info, "kernel": out.kernel_info,
            "timings": {**out.timings, "total_s": time.perf_counter() - t0},
            "final_losses": out.history[-1] if out.history else {}}
  llr = None if out.llr is None else image_io.from_model_range(out.llr, loaded.bit_depth)
  return SuperResolution(sr=image_io.from_model_range(out.sr, loaded.bit_depth),
                         kernel=None if out.kernel is None else np.asarray(out.kernel),
                         llr=llr, record=record)
