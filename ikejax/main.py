"""`python -m ikejax.main`: zero-shot super-resolution of one image with IKE.

  python -m ikejax.main --image x.png [--scale 2|3|4] [--out DIR]
      [--config paper|reference|fast] [--iters N] [--seed S] [--hr HR.png]

Without `--image` it runs the embedded default job: a public-domain photo
from the scikit-image wheel, degraded on the fly with a known kernel, and
scored against its ground truth.

Writes to DIR: `<stem>_x<s>.png` (SR), `<stem>_x<s>_llr.png` (the learned
X_LLR), `<stem>_x<s>_compare.png` (LR | bicubic | SR [| HR]),
`<stem>_x<s>_losses.png` and `<stem>_x<s>.json` (the run record).
"""

from __future__ import annotations

import os
import platform
import sys
import time

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
flags.DEFINE_string("image", None, "LR input image; omit to run the embedded default image.")
flags.DEFINE_integer("scale", 2, "SR factor: 2, 3 or 4.")
flags.DEFINE_string("out", "ikejax_out", "output directory.")
flags.DEFINE_string("config", "paper", "preset: paper, reference, fast or tiny.")
flags.DEFINE_integer("iters", None, "training iterations (default: the preset's).")
flags.DEFINE_integer("seed", 0, "PRNG seed.")
flags.DEFINE_integer("crop", None, "training crop side (default: the preset's, 128).")
flags.DEFINE_list("ablate", [], "ablation switches: no_energy, two_way, no_residual, "
                  "no_csr_bwd, no_inter.")
flags.DEFINE_bool("reference_inverse", False,
                  "use the official code's inexact reverse coupling pass.")
flags.DEFINE_enum("resize", None, ["matlab", "torch"],
                  "bicubic kind of the residual (default: the preset's).")
flags.DEFINE_enum("subnets", None, ["composed", "layers"],
                  "linear subnets as one composed 11x11 conv (fast, default) or layer by layer.")
flags.DEFINE_enum("u_init", None, ["he", "reference"],
                  "init of U: 'he' (trainable, default) or the official one (U never trains).")
flags.DEFINE_string("hr", None, "optional ground-truth HR image: adds Y-PSNR/SSIM to the record.")
flags.DEFINE_bool("progress", True, "show a progress bar.")


class UserError(Exception):
  """A problem with the user's input or flags: one line, exit code 2."""


def _versions() -> dict:
  import flax
  import jax
  import jaxlib
  import numpy
  import optax
  return {"python": platform.python_version(), "jax": jax.__version__,
          "jaxlib": jaxlib.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "numpy": numpy.__version__}


def run(image_path, out_dir, preset="paper", seed=0, overrides=None, ablations=(),
        hr_path=None, progress=True) -> dict:
  """Trains IKE on one image and writes all outputs. Returns the run record.

  Args:
    image_path: LR image, or None for the embedded default image.
    out_dir: output directory (created).
    preset: config preset name.
    seed: PRNG seed.
    overrides: `IKEConfig` fields to override (e.g. `{"scale": 4, "iters": 100}`).
    ablations: names from `configs.ABLATIONS`.
    hr_path: optional ground truth, adds Y-PSNR/SSIM to the record.
    progress: show a progress bar.

  Raises:
    UserError, ImageError, NonFiniteLossError: with one-line messages.
  """
  import dataclasses

  import jax
  import numpy as np

  from ikejax import configs, image_io, infer, metrics, ops, train, visualize

  try:
    cfg = configs.get_config(preset, ablations=tuple(ablations), **(overrides or {}))
  except (ValueError, TypeError) as e:
    raise UserError(str(e)) from None
  scale = cfg.scale

  hr = None
  if image_path is None:
    lr_pixels, hr, _ = image_io.default_image(scale)
    loaded = image_io.LoadedImage(pixels=lr_pixels, bit_depth=8, was_gray=False, path=None)
    stem = "astronaut"
  else:
    loaded = image_io.read_image(image_path)
    stem = os.path.splitext(os.path.basename(image_path))[0]
  if hr_path is not None:
    hr = image_io.read_image(hr_path).pixels
  h, w = loaded.pixels.shape[:2]
  try:
    cfg, warning = train.adapt_crop(cfg, h, w)
  except ValueError as e:
    raise UserError(str(e)) from None
  if warning:
    print(f"warning: {warning}", file=sys.stderr)
  if hr is not None:  # Check the ground truth's size now, not after training.
    try:
      metrics.match_size(np.empty((scale * h, scale * w, 3), np.uint8), hr, scale)
    except ValueError as e:
      raise UserError(f"--hr {hr_path}: {e}") from None

  base = os.path.join(out_dir, f"{stem}_x{scale}")
  outputs = {k: base + suffix for k, suffix in
             (("sr", ".png"), ("llr", "_llr.png"), ("compare", "_compare.png"),
              ("losses", "_losses.png"), ("record", ".json"))}
  protect = [p for p in (image_path, hr_path) if p]
  for out_path in outputs.values():  # Refuse before training, not after.
    if any(image_io.same_file(out_path, p) for p in protect):
      raise UserError(f"output {out_path} would overwrite an input file; choose another --out")
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create output directory {out_dir}: {e.strerror}") from None

  x = image_io.to_model_range(loaded.pixels, loaded.bit_depth)
  bar = None

  def on_compiled(seconds):
    nonlocal bar
    print(f"compiled the training step in {seconds:.1f} s", file=sys.stderr)
    if progress:
      from tqdm import tqdm
      bar = tqdm(total=cfg.iters, desc=f"{stem} x{scale}", unit="it", file=sys.stderr,
                 dynamic_ncols=True)

  def on_log(done, m):
    if bar is not None:
      bar.update(done - bar.n)
      bar.set_postfix_str(
          f"fwd {m['csr_fwd']:.3f} E {m['energy']:.4f} bwd {m['csr_bwd']:.3f} "
          f"inter {m['inter']:.4f} tv {m['tv']:.4f} D {m['d_lr']:.3f}/{m['d_hr']:.3f}")

  t_start = time.perf_counter()
  try:
    print(f"training {cfg.iters} iterations of IKE x{scale} on {stem} "
          f"({w}x{h}, crop {cfg.crop}, {jax.devices()[0].platform})", file=sys.stderr)
    result = train.fit(x, cfg, jax.random.key(seed), on_log=on_log, on_compiled=on_compiled)
  finally:
    if bar is not None:
      bar.close()

  t0 = time.perf_counter()
  sr = infer.super_resolve(result.state, x, cfg)
  infer_seconds = time.perf_counter() - t0
  llr = infer.downscale(result.state, x, cfg)

  sr_px = image_io.from_model_range(sr, loaded.bit_depth)
  llr_px = image_io.from_model_range(llr, loaded.bit_depth)
  bic = ops.imresize(x.astype(np.float64), float(scale), "matlab")
  bic_px = image_io.from_model_range(bic, loaded.bit_depth)
  image_io.save_image(outputs["sr"], sr_px, gray=loaded.was_gray, protect=protect)
  image_io.save_image(outputs["llr"], llr_px, gray=loaded.was_gray, protect=protect)

  to8 = lambda p: (p // 257).astype(np.uint8) if p.dtype == np.uint16 else p
  lr_big = np.repeat(np.repeat(to8(loaded.pixels), scale, 0), scale, 1)
  panels = {"LR (nearest)": lr_big, "bicubic": to8(bic_px), "IKE": to8(sr_px)}
  scores = {}
  if hr is not None:
    hr_c = metrics.match_size(sr_px, hr, scale)
    panels["HR"] = to8(hr_c)
    scores = {"ikejax": metrics.evaluate(to8(sr_px), to8(hr_c), scale),
              "bicubic": metrics.evaluate(to8(bic_px), to8(hr_c), scale)}
  image_io.save_image(outputs["compare"], visualize.side_by_side(panels), protect=protect)
  image_io.save_image(outputs["losses"], visualize.loss_curves(
      result.history, ["csr_fwd", "energy", "csr_bwd", "inter", "tv", "d_lr", "d_hr"]),
                      protect=protect)

  dev = jax.devices()[0]
  record = {
      "image": image_path or "embedded default (skimage astronaut, degraded)",
      "scale": scale, "preset": preset, "ablations": list(ablations), "seed": seed,
      "config": dataclasses.asdict(cfg), "crop_warning": warning,
      "input_shape": list(loaded.pixels.shape), "output_shape": list(sr_px.shape),
      "bit_depth": loaded.bit_depth,
      "versions": _versions(),
      "device": {"platform": dev.platform, "kind": dev.device_kind,
                 "count": jax.device_count(), "host": platform.node()},
      "timings": {"compile_s": result.compile_seconds, "train_s": result.train_seconds,
                  "s_per_iter": result.train_seconds / max(1, cfg.iters),
                  "inference_s": infer_seconds,
                  "total_s": time.perf_counter() - t_start},
      "final_losses": result.history[-1] if result.history else {},
      "history": result.history,
      "scores": scores,
      "outputs": outputs,
  }
  image_io.write_json_atomic(outputs["record"], record)
  return record


def main(argv):
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Hide backend-probing INFO lines.
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  overrides = {"scale": FLAGS.scale}
  for flag, field in (("iters", "iters"), ("crop", "crop"), ("resize", "resize_kind"),
                      ("u_init", "u_init")):
    if FLAGS[flag].value is not None:
      overrides[field] = FLAGS[flag].value
  if FLAGS.reference_inverse:
    overrides["reference_inverse"] = True
  if FLAGS.subnets is not None:
    overrides["compose_subnets"] = FLAGS.subnets == "composed"
  record = run(FLAGS.image, FLAGS.out, FLAGS.config, FLAGS.seed, overrides=overrides,
               ablations=FLAGS.ablate, hr_path=FLAGS.hr, progress=FLAGS.progress)
  line = f"wrote {record['outputs']['sr']} {tuple(record['output_shape'])}"
  for name, sc in record["scores"].items():
    line += f"  {name}: Y-PSNR {sc['psnr_y']:.2f} dB SSIM {sc['ssim_y']:.4f}"
  print(line)


def _entry():
  from ikejax.image_io import ImageError
  from ikejax.train import NonFiniteLossError
  try:
    app.run(main)
  except (UserError, ImageError, NonFiniteLossError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except OSError as e:  # e.g. an unwritable output directory.
    print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  _entry()
