"""`python -m ikejax.main`: zero-shot super-resolution with IKE, one image or a folder.

  python -m ikejax.main --image x.png [--scale 2|3|4] [--out DIR]
      [--config paper|reference|fast] [--iters N] [--seed S] [--hr HR.png]
  python -m ikejax.main --images DIR_OR_GLOB --out DIR [--batch B] [--gt DIR]
      [--checkpoint_every N] [--distributed]      (see ikejax/folder.py)
  python -m ikejax.main --method kernelgan|issr-dil|bicubic|sharpen (--image x.png | --images DIR)
      (see ikejax/methods.py)

Without `--image` it runs the embedded default job: a public-domain photo
from the scikit-image wheel, degraded on the fly with a known kernel, and
scored against its ground truth.

Writes to DIR: `<stem>_x<s>.png` (SR), `<stem>_x<s>_llr.png` (the learned
X_LLR), `<stem>_x<s>_compare.png` (LR | bicubic | SR [| HR]),
`<stem>_x<s>_losses.png`, `<stem>_x<s>_kernel.{npy,mat,png}` (the estimated
kernel, `ikejax/kernel.py`) and `<stem>_x<s>.json` (the run record).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
from absl import logging

# A private registry: importing this module adds nothing to absl's global flags (another absl
# program may import it); `_entry` joins them to the global ones for the command line.
FLAGS = flags.FlagValues()


def _define(kind: str, *args, **kwargs):
  return getattr(flags, f"DEFINE_{kind}")(*args, flag_values=FLAGS, **kwargs)


_define("string", "image", None, "LR input image; omit to run the embedded default image.")
_define("integer", "scale", 2, "SR factor: 2, 3 or 4.")
_define("string", "out", "ikejax_out", "output directory.")
_define("enum", "method", "ike", ["ike", "kernelgan", "issr-dil", "bicubic", "sharpen"],
                  "ike (default); kernelgan: KernelGAN's kernel + ISSR-DIL's inverse; "
                  "issr-dil: kernels from image statistics + ISSR-DIL's inverse; "
                  "bicubic, sharpen: zero-parameter reference filters.")
_define("string", "config", "default", "preset: ike: default, paper, reference, fast, selfsup or tiny; "
                    "kernelgan: paper or tiny; issr-dil: paper, paper_lr or tiny.")
_define("integer", "iters", None, "training iterations (default: the preset's).")
_define("integer", "seed", 0, "PRNG seed.")
_define("integer", "crop", None, "training crop side (default: the preset's, 128).")
_define("list", "ablate", [], "ablation switches: no_energy, two_way, no_residual, "
                  "no_csr_bwd, no_inter.")
_define("bool", "reference_inverse", False,
                  "use the official code's inexact reverse coupling pass.")
_define("enum", "resize", None, ["matlab", "torch"],
                  "bicubic kind of the residual (default: the preset's).")
_define("enum", "subnets", None, ["composed", "layers"],
                  "linear subnets as one composed 11x11 conv (fast, default) or layer by layer.")
_define("enum", "u_init", None, ["he", "reference"],
                  "init of U: 'he' (trainable, default) or the official one (U never trains).")
_define("string", "kernel", None, "a known degradation kernel (.npy or .mat with key "
                    "Kernel). --method ike --config default: IKE's decoder "
                    "trained on sons made by it; --method issr-dil: the L-CNN trained on it "
                    "instead of the image statistics' kernels; "
                    "a folder: each image's own (an ikejax run's <stem>_x<s>_kernel.npy, "
                    "<stem>.npy/.mat, DIV2KRK's kernel_<n>.mat).")
_define("string", "hr", None, "optional ground-truth HR image: adds Y-PSNR/SSIM to the record.")
_define("bool", "progress", True, "show a progress bar.")
# Folder runs (ikejax/folder.py).
_define("string", "images", None, "folder or glob of LR images: run them all (resumable).")
_define("integer", "batch", 1, "folder runs: images trained per compiled step. On CPU the "
                     "host is split into this many XLA devices, one image each.")
_define("string", "gt", None, "folder runs: ground-truth folder, matched by file name.")
_define("integer", "checkpoint_every", 0, "folder runs: save the batch's state every N "
                     "iterations, so a killed run resumes mid-training (0: never).")
_define("bool", "distributed", False, "folder runs on several hosts: call "
                  "jax.distributed.initialize (auto-detects SLURM, TPU pods, ...) and give "
                  "each process its share of the images.")
_define("string", "coordinator_address", None, "with --distributed: host:port of process 0.")
_define("integer", "num_processes", None, "with --distributed: number of processes.")
_define("integer", "process_id", None, "with --distributed: this process's index.")


class UserError(Exception):
  """A problem with the user's input or flags: one line, exit code 2."""


def run(image_path, out_dir, preset="default", seed=0, overrides=None, ablations=(),
        hr_path=None, progress=True, kernel_spec=None) -> dict:
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
    kernel_spec: `--kernel` (a kernel file, or a folder holding the image's): the
      non-blind mode, sons made by that kernel (needs a preset with `lambda_rec`).

  Raises:
    UserError, ImageError, NonFiniteLossError: with one-line messages.
  """
  import jax

  from ikejax import configs, image_io, results, train

  try:
    cfg = configs.get_config(preset, ablations=tuple(ablations), **(overrides or {}))
  except (ValueError, TypeError) as e:
    raise UserError(str(e)) from None
  scale = cfg.scale

  loaded, hr, stem = results.read_inputs(image_path, hr_path, scale)
  h, w = loaded.pixels.shape[:2]
  try:
    cfg, warning = train.adapt_crop(cfg, h, w)
  except ValueError as e:
    raise UserError(str(e)) from None
  if warning:
    print(f"warning: {warning}", file=sys.stderr)
  if hr is not None:  # Check the ground truth's size now, not after training.
    try:
      results.check_hr(hr, loaded, scale, f"--hr {hr_path}")
    except ValueError as e:
      raise UserError(str(e)) from None

  given, kernel_file = None, None
  if kernel_spec is not None:
    from ikejax import methods
    if cfg.lambda_rec <= 0:
      raise UserError(f"--kernel needs a preset that trains on sons (--config default); "
                      f"{preset!r} learns its own degradation")
    try:
      given = methods.given_kernel(kernel_spec, image_path, scale)
    except ValueError as e:
      raise UserError(str(e)) from None
    if given[0].shape[0] % 2 == 0 or given[0].shape[0] != given[0].shape[1]:
      raise UserError(f"kernel {given[1]} is {given[0].shape}; expected a square, odd-sided kernel")
    from ikejax import degrade
    # Centre of mass to the LR pixel's centre (DIV2KRK's convention; a no-op for an
    # operator-window estimate such as an ikejax run's).
    kernel_file = given[1]
    given = (degrade.kernel_shift(given[0], scale), {"source": f"given: {kernel_file}"})
  else:
    from ikejax import spectral
    estimate = spectral.son_kernel(cfg, loaded.pixels, loaded.bit_depth)
    if estimate is not None:
      given, k_info = estimate, estimate[1]
      if "fallback" in k_info:
        print(f"warning: {k_info['fallback']}; making sons with the bicubic kernel",
              file=sys.stderr)
      else:
        print(f"estimated the kernel from the spectrum: sigmas {k_info['sigmas'][0]:.2f} x "
              f"{k_info['sigmas'][1]:.2f} px", file=sys.stderr)

  outputs = results.output_paths(out_dir, stem, scale)
  protect = [p for p in (image_path, hr_path, kernel_file) if p]
  clash = results.overwritten_input(outputs, protect)  # Refuse before training, not after.
  if clash:
    raise UserError(f"output {clash} would overwrite an input file; choose another --out")
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
      decode = (f"rec {m['rec']:.4f} K {m['kernel']:.3f}" if cfg.lambda_rec > 0 else
                f"bwd {m['csr_bwd']:.3f} inter {m['inter']:.4f} tv {m['tv']:.4f}")
      val = f" val {m['val_psnr']:.2f} dB" if "val_psnr" in m else ""
      bar.set_postfix_str(f"fwd {m['csr_fwd']:.3f} E {m['energy']:.4f} {decode} "
                          f"D {m['d_lr']:.3f}/{m['d_hr']:.3f}{val}")

  t_start = time.perf_counter()
  try:
    print(f"training {cfg.iters} iterations of IKE x{scale} on {stem} "
          f"({w}x{h}, crop {cfg.crop}, {jax.devices()[0].platform})", file=sys.stderr)
    result = train.fit(x, cfg, jax.random.key(seed), on_log=on_log, on_compiled=on_compiled,
                       son_kernel=None if given is None else given[0])
  finally:
    if bar is not None:
      bar.close()

  info = {"image": image_path or "embedded default (skimage astronaut, degraded)",
          "input": image_io.file_fingerprint(image_path) if image_path else None,
          "preset": preset, "ablations": list(ablations), "seed": seed,
          "crop_warning": warning, "validation": result.validation}
  timings = {"compile_s": result.compile_seconds, "train_s": result.train_seconds,
             "s_per_iter": result.train_seconds / max(1, cfg.iters)}
  record = results.write_outputs(result.state, x, loaded, cfg, outputs, protect=protect, hr=hr,
                                 history=result.history, timings=timings, info=info,
                                 t_start=t_start, given_kernel=given)
  return record


def main(argv):
  if not flags.FLAGS["verbosity"].present:
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
  if FLAGS.method != "ike":
    return run_method_cli()
  if FLAGS.images is not None:
    if FLAGS.kernel is not None:
      raise UserError("--kernel with --method ike runs one --image at a time")
    return run_folder_cli(overrides)
  for flag in ("gt", "coordinator_address", "num_processes", "process_id"):
    if FLAGS[flag].present:
      raise UserError(f"--{flag} needs --images")
  record = run(FLAGS.image, FLAGS.out, FLAGS.config, FLAGS.seed, overrides=overrides,
               ablations=FLAGS.ablate, hr_path=FLAGS.hr, progress=FLAGS.progress,
               kernel_spec=FLAGS.kernel)
  line = f"wrote {record['outputs']['sr']} {tuple(record['output_shape'])}"
  for name, sc in record["scores"].items():
    line += f"  {name}: Y-PSNR {sc['psnr_y']:.2f} dB SSIM {sc['ssim_y']:.4f}"
  print(line)


def run_method_cli() -> None:
  """`--method kernelgan|issr-dil|bicubic|sharpen`, on `--image` (or the default image) or `--images`."""
  from ikejax import folder, image_io, methods
  ike_only = ("ablate", "reference_inverse", "resize", "subnets", "u_init", "crop",
              "checkpoint_every", "distributed", "coordinator_address", "num_processes",
              "process_id")
  for flag in ike_only:
    if FLAGS[flag].present:
      raise UserError(f"--{flag} applies to --method ike only")
  if FLAGS.batch != 1:
    raise UserError(f"--batch applies to --method ike only ({FLAGS.method} runs one image "
                    "at a time)")
  try:
    # The other methods' presets are their papers' ("default" names IKE's recipe).
    preset = FLAGS.config if FLAGS["config"].present else "paper"
    mcfg = methods.get_config(FLAGS.method, preset, FLAGS.scale, FLAGS.iters,
                              FLAGS.kernel)
  except ValueError as e:
    raise UserError(str(e)) from None
  if FLAGS.images is None:
    if FLAGS.gt is not None:
      raise UserError("--gt needs --images")
    try:
      record = methods.run_single(mcfg, FLAGS.image, FLAGS.out, FLAGS.seed, FLAGS.hr,
                                  FLAGS.progress)
    except image_io.ImageError:
      raise
    except ValueError as e:
      raise UserError(str(e)) from None
    line = f"wrote {record['outputs']['sr']} {tuple(record['output_shape'])}"
    for name, sc in record["scores"].items():
      name = FLAGS.method if name == "ikejax" else name
      line += f"  {name}: Y-PSNR {sc['psnr_y']:.2f} dB SSIM {sc['ssim_y']:.4f}"
    print(line)
    return
  if FLAGS.image is not None or FLAGS.hr is not None:
    raise UserError("--images runs a folder; use --gt for its ground truths, not --image/--hr")
  try:
    jobs = methods.run_folder(FLAGS.images, FLAGS.out, mcfg, FLAGS.seed, FLAGS.gt,
                              FLAGS.progress)
  except folder.FolderError as e:
    raise UserError(str(e)) from None
  _report_folder(jobs)


def _report_folder(jobs) -> None:
  status = [j.row["status"] for j in jobs]
  failed = [j for j in jobs if j.row["status"] == "failed"]
  for j in failed:
    print(f"failed: {j.path}: {j.row['error']}", file=sys.stderr)
  print(f"{status.count('done')} done, {status.count('done earlier')} done earlier, "
        f"{len(failed)} failed; manifest in {FLAGS.out}")
  if failed:
    sys.exit(1)


def run_folder_cli(overrides: dict) -> None:
  """`--images`: sets up devices (and hosts) before JAX starts, then `folder.run_folder`."""
  if FLAGS.image is not None or FLAGS.hr is not None:
    raise UserError("--images runs a folder; use --gt for its ground truths, not --image/--hr")
  if FLAGS.batch < 1:
    raise UserError(f"--batch must be >= 1, got {FLAGS.batch}")
  if FLAGS.checkpoint_every < 0:
    raise UserError(f"--checkpoint_every must be >= 0, got {FLAGS.checkpoint_every}")
  from ikejax import batch, configs, folder
  batch.use_cpu_devices(FLAGS.batch)  # Only the CPU platform; before JAX starts.
  import jax
  if FLAGS.distributed:
    kw = {k: FLAGS[k].value for k in ("coordinator_address", "num_processes", "process_id")
          if FLAGS[k].value is not None}
    # Shares finish at different times: a finished process waits for the others at
    # shutdown (its outputs are written) instead of aborting after the default 5 minutes.
    kw["shutdown_timeout_seconds"] = 7 * 24 * 3600
    try:
      jax.distributed.initialize(**kw)
    except (RuntimeError, ValueError) as e:
      raise UserError(f"jax.distributed.initialize failed: {str(e).splitlines()[0]}") from None
  try:
    cfg = configs.get_config(FLAGS.config, ablations=tuple(FLAGS.ablate), **overrides)
  except (ValueError, TypeError) as e:
    raise UserError(str(e)) from None
  try:
    jobs = folder.run_folder(
        FLAGS.images, FLAGS.out, cfg, preset=FLAGS.config, ablations=FLAGS.ablate,
        seed=FLAGS.seed, batch_size=FLAGS.batch, gt_dir=FLAGS.gt,
        checkpoint_every=FLAGS.checkpoint_every, process_index=jax.process_index(),
        process_count=jax.process_count(), progress=FLAGS.progress)
  except folder.FolderError as e:
    raise UserError(str(e)) from None
  _report_folder(jobs)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parse, with a bad or unknown flag as one `error:` line and exit 2 (not FATAL, 1)."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)
  FLAGS.mark_as_parsed()  # the same Flag objects, parsed through the global registry
  return rest


def _entry():
  from ikejax.image_io import ImageError
  from ikejax.train import NonFiniteLossError
  if "image" not in flags.FLAGS:
    flags.FLAGS.append_flag_values(FLAGS)
    for name in FLAGS:  # listed by --help as this program's flags
      flags.declare_key_flag(name, flag_values=flags.FLAGS)
  try:
    app.run(main, flags_parser=_parse_flags)
  except (UserError, ImageError, NonFiniteLossError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except OSError as e:  # e.g. an unwritable output directory.
    print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  _entry()
