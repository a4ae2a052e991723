"""What one finished zero-shot job writes: SR, X_LLR, pictures and the JSON record.

Written by the one job path (`ikejax.runs.job.write`) for every method, one image or a
folder, so that an image gives the same files either way. Every file is written
atomically and the record last: an image counts as finished (`is_finished`)
only once its record exists, so a run killed mid-write is redone, never
half-kept.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Optional, Sequence

import numpy as np

from ikejax import ops
from ikejax.imaging import image_io, kernels, metrics, pictures, resize

LOSS_KEYS = ("csr_fwd", "energy", "csr_bwd", "inter", "tv", "rec", "kernel", "d_lr", "d_hr")


def output_paths(out_dir: str, stem: str, scale: int) -> dict[str, str]:
  """The files of one job: `<stem>_x<s>.png`, `_llr.png`, `_compare.png`, `_losses.png`,
  `_kernel.{npy,mat,png}` (the learned blur kernel, `ikejax.imaging.kernels`) and `.json`."""
  base = os.path.join(out_dir, f"{stem}_x{scale}")
  paths = {k: base + suffix for k, suffix in
           (("sr", ".png"), ("llr", "_llr.png"), ("compare", "_compare.png"),
            ("losses", "_losses.png"))}
  paths.update({f"kernel_{ext}": p for ext, p in kernels.kernel_paths(base).items()})
  paths["record"] = base + ".json"
  return paths


def overwritten_input(outputs: dict[str, str], inputs: Sequence[str]) -> Optional[str]:
  """The first output path that names one of `inputs` (a file to protect), or None."""
  for out_path in outputs.values():
    if any(image_io.same_file(out_path, p) for p in inputs):
      return out_path
  return None


def check_hr(hr: np.ndarray, loaded: image_io.LoadedImage, scale: int, what: str) -> None:
  """Raises ValueError(`what: reason`) unless `hr` can score the x`scale` SR of `loaded`.

  Checked before training, not after it.
  """
  h, w = loaded.pixels.shape[:2]
  try:
    metrics.match_size(np.empty((scale * h, scale * w, 3), np.uint8), hr, scale)
  except ValueError as e:
    raise ValueError(f"{what}: {e}") from None


def is_finished(outputs: dict[str, str]) -> Optional[dict]:
  """The record of a finished job (record and SR exist, record readable), else None."""
  if not (os.path.isfile(outputs["record"]) and os.path.isfile(outputs["sr"])):
    return None
  try:
    with open(outputs["record"], encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def made_from_another_file(record: dict, path: str) -> bool:
  """Whether `record` names an input whose content (sha256) differs from the file `path`.

  A record without an input hash (made before records carried one) is not judged."""
  made_from = (record.get("input") or {}).get("sha256")
  return bool(made_from) and made_from != image_io.file_fingerprint(path)["sha256"]


def versions() -> dict:
  import flax
  import jax
  import jaxlib
  import optax
  return {"python": platform.python_version(), "jax": jax.__version__,
          "jaxlib": jaxlib.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "numpy": np.__version__}


def resized_alpha(loaded: image_io.LoadedImage, shape: tuple, scale: float
                  ) -> Optional[np.ndarray]:
  """The input's alpha resized for an output of `shape` `(H', W')`: MATLAB bicubic by
  `scale`, clipped, cut (or edge-padded) to `shape`; None when the input has none."""
  if loaded.alpha is None:
    return None
  top = float(2 ** loaded.bit_depth - 1)
  a = resize.imresize(loaded.alpha.astype(np.float64)[:, :, None] / top, scale, "matlab")[:, :, 0]
  a = a[:shape[0], :shape[1]]
  a = np.pad(a, ((0, shape[0] - a.shape[0]), (0, shape[1] - a.shape[1])), mode="edge")
  return np.rint(np.clip(a, 0.0, 1.0) * top).astype(loaded.alpha.dtype)


def bicubic_window(x: np.ndarray, s: int, window: tuple, bit_depth: int) -> np.ndarray:
  """Pixels of one window of the MATLAB bicubic x`s` of `x` (`[h, w, C]` in [-1, 1]).

  `window`: `((top, height), (left, width))` in output px -> `[height, width, C]`. Made from
  the LR window plus a 4-px margin (bicubic reads 2 px either side; the image's own border
  where the margin meets it), so it equals the window of the whole upscale, one channel at
  a time (a float64 bicubic of a large photo is GBs).
  """
  (t, ch), (l, cw) = window
  h, w = x.shape[:2]
  r0, c0 = max(0, t // s - 4), max(0, l // s - 4)
  r1, c1 = min(h, -(-(t + ch) // s) + 4), min(w, -(-(l + cw) // s) + 4)
  part = np.asarray(x[r0:r1, c0:c1], np.float64)
  return np.stack([image_io.from_model_range(
      resize.imresize(part[:, :, c], float(s), "matlab")[t - s * r0:t - s * r0 + ch,
                                                         l - s * c0:l - s * c0 + cw], bit_depth)
      for c in range(x.shape[2])], axis=-1)


def write_result(outputs: dict[str, str], *, loaded: image_io.LoadedImage, x: np.ndarray,
                 scale: int, sr: np.ndarray, llr: Optional[np.ndarray],
                 est_kernel: np.ndarray, kernel_info: dict, protect: Sequence[str],
                 hr: Optional[np.ndarray], history: list[dict], loss_keys: Sequence[str],
                 timings: dict, info: dict, t_start: Optional[float] = None,
                 label: str = "SR") -> dict:
  """Every output file of one finished job, whatever the method; the record last.

  Args:
    sr: `[sH, sW, 3]` result in [-1, 1]; `llr`: the method's downscale of the
      input in [-1, 1], or None.
    est_kernel: the estimated x`scale` kernel (operator-window convention).
    kernel_info: recorded with the kernel's moments.
    loss_keys: which `history` entries the loss-curve picture plots.
    info: fields put first in the record (image, method, config, ...).
    label: the method's name on the comparison picture.
    protect: input files never to overwrite.
    hr: ground truth `[~sH, ~sW, 3]` pixels, or None (adds Y-PSNR/SSIM).
    timings: seconds so far; `t_start` (`time.perf_counter()` at the job's start) adds
      `total_s`.
  """
  import time

  import jax

  s = scale
  sr_px = image_io.from_model_range(sr, loaded.bit_depth)
  keep = {"icc_profile": loaded.icc_profile}  # the input's colour profile and alpha go on
  image_io.save_image(outputs["sr"], sr_px, gray=loaded.was_gray, protect=protect,
                      alpha=resized_alpha(loaded, sr_px.shape[:2], s), **keep)
  if llr is not None:
    llr_px = image_io.from_model_range(llr, loaded.bit_depth)
    image_io.save_image(outputs["llr"], llr_px, gray=loaded.was_gray, protect=protect,
                        alpha=resized_alpha(loaded, llr_px.shape[:2], 1.0 / s), **keep)

  to8 = lambda p: (p // 257).astype(np.uint8) if p.dtype == np.uint16 else p
  # The picture shows one window: its panels are made for that window only (a whole
  # bicubic of a large photo at x4 is GBs), except the bicubic that scores need whole.
  win = pictures.crop_window(sr_px.shape[:2])
  (t, ch), (l, cw) = win
  cut = lambda p: p[t:t + ch, l:l + cw]
  scores = {}
  if hr is not None:
    bic_px = bicubic_window(x, s, ((0, sr_px.shape[0]), (0, sr_px.shape[1])), loaded.bit_depth)
    hr_c = metrics.match_size(sr_px, hr, s)
    scores = {"ikejax": metrics.evaluate(to8(sr_px), to8(hr_c), s),
              "bicubic": metrics.evaluate(to8(bic_px), to8(hr_c), s)}
    bic_px = cut(bic_px)
  else:
    bic_px = bicubic_window(x, s, win, loaded.bit_depth)
  lr_rows = np.arange(t, t + ch) // s
  lr_cols = np.arange(l, l + cw) // s
  panels = {"LR (nearest)": to8(loaded.pixels[lr_rows][:, lr_cols]), "bicubic": to8(bic_px),
            label: to8(cut(sr_px))}
  if hr is not None:
    panels["HR"] = to8(cut(hr_c))
  image_io.save_image(outputs["compare"], pictures.side_by_side(panels), protect=protect)
  image_io.save_image(outputs["losses"], pictures.loss_curves(history, loss_keys),
                      protect=protect)
  kernels.save_kernel({e: outputs[f"kernel_{e}"] for e in ("npy", "mat", "png")}, est_kernel,
                     protect=protect)
  k_info = {**kernel_info, **kernels.moments(est_kernel)}

  if t_start is not None:
    timings["total_s"] = time.perf_counter() - t_start
  dev = jax.devices()[0]
  written = {k: v for k, v in outputs.items() if k != "llr" or llr is not None}
  record = {
      **info,
      "scale": s,
      "input_shape": list(loaded.pixels.shape), "output_shape": list(sr_px.shape),
      "bit_depth": loaded.bit_depth,
      "alpha": loaded.alpha is not None,
      "icc_profile": loaded.icc_profile is not None,
      "exif_orientation": loaded.orientation,
      "versions": versions(),
      "device": {"platform": dev.platform, "kind": dev.device_kind,
                 "count": jax.device_count(), "host": platform.node()},
      "numerics": {"matmul_precision": jax.config.jax_default_matmul_precision or "default",
                   "cpu_convs": ops.cpu_convs()},
      "timings": timings,
      "final_losses": history[-1] if history else {},
      "history": history,
      "scores": scores,
      "kernel": k_info,
      "outputs": written,
  }
  image_io.write_json_atomic(outputs["record"], record)
  return record
