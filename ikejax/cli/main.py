"""`ikejax` (also `python -m ikejax`, `python -m ikejax.main`): zero-shot super-resolution.

  ikejax [-i IMAGE|DIR|GLOB] [-o OUT] [-s 2|3|4] [--method M] [--config PRESET]
         [--set FIELD=VALUE ...] [--hr HR.png | --gt GT_DIR] [--kernel K] [--batch B] ...

One image, or every image of a folder or glob (resumable, with a manifest,
`ikejax.runs.folder`), with any method of `ikejax.runs.methods` (IKE by default), through one
job path (`ikejax.runs.job`). Without `-i` it runs the embedded default job: a public-domain
photo from the scikit-image wheel, degraded on the fly with a known kernel and scored
against its ground truth.

Writes to OUT: `<stem>_x<s>.png` (SR), `<stem>_x<s>_llr.png` (the learned X_LLR),
`<stem>_x<s>_compare.png` (LR | bicubic | SR [| HR]), `<stem>_x<s>_losses.png`,
`<stem>_x<s>_kernel.{npy,mat,png}` (the kernel) and `<stem>_x<s>.json` (the run record).
"""

from __future__ import annotations

import glob
import os
import sys

from absl import app
from absl import flags
from absl import logging

# A private registry: importing this module adds nothing to absl's global flags (another absl
# program may import it); `run_cli` joins them to the global ones for the command line.
FLAGS = flags.FlagValues()
METHODS = ("ike", "kernelgan", "issr-dil", "zssr", "kernelgan+zssr", "dualsr", "bicubic", "sharpen")  # ikejax.runs.methods.NAMES


def _define(kind: str, *args, **kwargs):
  return getattr(flags, f"DEFINE_{kind}")(*args, flag_values=FLAGS, **kwargs)


_define("string", "input", None, "LR image, folder or glob; omit to run the embedded default "
        "image.", short_name="i")
_define("string", "image", None, "alias of --input (one image).")
_define("string", "images", None, "alias of --input (a folder or glob).")
_define("integer", "scale", 2, "SR factor: 2, 3 or 4.", short_name="s")
_define("string", "out", "ikejax_out", "output directory.", short_name="o")
_define("enum", "method", "ike", list(METHODS),
        "ike (default); kernelgan: KernelGAN's kernel + ISSR-DIL's inverse; "
        "issr-dil: kernels from image statistics + ISSR-DIL's inverse; "
        "zssr: ZSSR on --kernel (bicubic without); kernelgan+zssr: KernelGAN's kernel + ZSSR; "
        "dualsr: DualSR (blind, x2); "
        "bicubic, sharpen: zero-parameter reference filters.")
_define("string", "config", None, "preset: ike: default (the default), paper, reference, fast, "
        "selfsup or tiny; kernelgan: paper or tiny; issr-dil: paper, paper_lr or tiny; "
        "zssr / kernelgan+zssr: paper, given-kernel, kernelgan or tiny.")
_define("multi_string", "set", [], "FIELD=VALUE: set any field of the method's config "
        "(ike: IKEConfig; kernelgan / issr-dil: kernelgan.FIELD, dil.FIELD; zssr: "
        "zssr.FIELD); repeatable.")
_define("integer", "iters", None, "training iterations (default: the preset's).")
_define("integer", "seed", 0, "PRNG seed.")
_define("integer", "tile", None, "whole-image inference on overlapping tiles of this side (input "
        "px, at least 64), which bounds memory on large photos; 0: the whole image at once; "
        "default: whole up to 2 megapixels, else 512 on CPU and 1024 on accelerators.")
_define("enum", "precision", "highest", ["highest", "fast"], "float32 matmuls and convs: "
        "'highest' computes them in full float32 on every backend (the flow's exact inverse "
        "and batched = single hold to float32 rounding); 'fast' takes the backend's default "
        "(TF32-like on Ampere/Hopper GPUs; no change on CPU).")
_define("enum", "conv", "auto", ["auto", "cpu", "plain"], "convolution formulation: 'auto' "
        "takes the CPU-tuned ones (banded matmuls, blocked filter gradients: the same "
        "functions) on the CPU backend only; 'cpu' or 'plain' (lax.conv) everywhere. "
        "Default: $IKEJAX_CONV, else auto.")
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
        "Kernel). --method ike --config default: IKE's decoder trained on sons made by it; "
        "--method issr-dil: the L-CNN trained on it instead of the image statistics' kernels; "
        "--method zssr: its sons made with it; "
        "a folder: each image's own (an ikejax run's <stem>_x<s>_kernel.npy, "
        "<stem>.npy/.mat, DIV2KRK's kernel_<n>.mat); 'spectral': each image's closed-form "
        "blind estimate.")
_define("string", "hr", None, "one image: its ground-truth HR image (adds Y-PSNR/SSIM).")
_define("bool", "progress", True, "show a progress bar.")
# Folder runs (ikejax/runs/folder.py).
_define("integer", "batch", None, "folder runs of ike: images trained per compiled step "
        "(default: one per local GPU/TPU, 1 on CPU). On CPU the host is split into this many "
        "XLA devices, one image each.")
_define("string", "gt", None, "folder runs: ground-truth folder, matched by file name.")
_define("integer", "checkpoint_every", 0, "folder runs of ike: save the batch's state every N "
        "iterations, so a killed run resumes mid-training (0: never).")
_define("bool", "distributed", False, "folder runs on several hosts: call "
        "jax.distributed.initialize (auto-detects SLURM, TPU pods, ...) and give "
        "each process its share of the images.")
_define("string", "shard", None, "folder runs: i/N, take share i of N independent processes "
        "(images i, i + N, ...; no coordinator, one may die alone); each writes "
        "manifest.process<i>.json, joined by --merge.")
_define("bool", "merge", False, "join the per-process manifests of -o OUT (from --shard or "
        "--distributed) into its manifest.json, then exit.")
_define("string", "coordinator_address", None, "with --distributed: host:port of process 0.")
_define("integer", "num_processes", None, "with --distributed: number of processes.")
_define("integer", "process_id", None, "with --distributed: this process's index.")

# Flags that set IKE's config (their IKEConfig field), refused for the other methods.
_IKE_FIELDS = {"crop": "crop", "resize": "resize_kind", "u_init": "u_init"}
_IKE_ONLY = ("ablate", "reference_inverse", "resize", "subnets", "u_init", "crop",
             "checkpoint_every", "distributed", "coordinator_address", "num_processes",
             "process_id")


class UserError(Exception):
  """A problem with the user's input or flags: one line, exit code 2."""


def _input() -> tuple[str | None, bool]:
  """`(path, is_folder)` of `-i` / `--image` / `--images` (None: the embedded default job)."""
  given = [n for n in ("input", "image", "images") if FLAGS[n].value is not None]
  if len(given) > 1:
    raise UserError(f"give one input: --{given[0]} and --{given[1]} (--image and --images "
                    "are aliases of -i/--input)")
  if not given:
    return None, False
  path = FLAGS[given[0]].value
  if given[0] == "image":
    return path, False
  folder = (given[0] == "images" or os.path.isdir(path)
            or (not os.path.exists(path) and glob.has_magic(path)))
  return path, folder


def _overrides() -> dict:
  """The config fields the dedicated flags set."""
  out = {}
  if FLAGS.iters is not None:
    out["iters"] = FLAGS.iters
  if FLAGS.method == "ike":
    for flag, field in _IKE_FIELDS.items():
      if FLAGS[flag].value is not None:
        out[field] = FLAGS[flag].value
    if FLAGS.reference_inverse:
      out["reference_inverse"] = True
    if FLAGS.subnets is not None:
      out["compose_subnets"] = FLAGS.subnets == "composed"
    if FLAGS.ablate:
      out["ablations"] = tuple(FLAGS.ablate)
  return out


def _config(method):
  """`(preset, config)` of the method from the flags: preset, dedicated flags, `--set`."""
  preset = FLAGS.config or method.default_preset
  return preset, make_config(method, preset, FLAGS.scale, _overrides(), FLAGS.set, FLAGS.kernel)


def make_config(method, preset: str, scale: int, overrides: dict, assignments=(),
                kernel_spec=None):
  """The method's validated config (raises UserError with one line)."""
  from ikejax.runs import methods
  try:
    cfg = methods.override(method.config(preset, scale, overrides, kernel=kernel_spec),
                           assignments)
    return cfg.validate() if hasattr(cfg, "validate") else cfg
  except (ValueError, TypeError) as e:
    raise UserError(str(e)) from None


def run(image_path, out_dir, preset=None, seed=0, *, method="ike", scale=2, overrides=None,
        assignments=(), hr_path=None, progress=True, kernel_spec=None, tile=None) -> dict:
  """One image (None: the embedded default job) through the job path, every output written.

  `overrides`: config fields (IKE also takes `ablations`); `assignments`: `--set`'s
  `FIELD=VALUE` strings; `tile`: `--tile` (None: by image size and backend). Returns the
  record.

  Raises:
    UserError, ImageError, NonFiniteLossError: with one-line messages.
  """
  from ikejax.runs import methods
  try:
    m = methods.get(method)
  except ValueError as e:
    raise UserError(str(e)) from None
  preset = preset or m.default_preset
  cfg = make_config(m, preset, scale, dict(overrides or {}), assignments, kernel_spec)
  ablations = list((overrides or {}).get("ablations", ()))
  return _run_one(m, cfg, preset, ablations, image_path, out_dir, seed, hr_path, progress,
                  kernel_spec, _check_tile(tile))


def _check_tile(tile):
  if tile is not None and tile != 0 and tile < 64:
    raise UserError(f"--tile must be 0 (whole image) or at least 64, got {tile}")
  return tile


def _run_one(m, cfg, preset, ablations, image_path, out_dir, seed, hr_path, progress,
             kernel_spec, tile=None) -> dict:
  """One image through the job path, with messages and a progress bar; returns the record."""
  import jax

  from ikejax.runs import job as job_lib
  job = job_lib.new_job(image_path, out_dir, cfg.scale, gt=hr_path)
  try:
    job_lib.read(job, cfg.scale, kernel_spec, hr_label=f"--hr {hr_path}")
    m.prepare(cfg, job)
  except ValueError as e:  # ImageError is one
    raise UserError(str(e).splitlines()[0]) from None
  for line in job.extra.get("messages", []):
    print(line, file=sys.stderr)
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create output directory {out_dir}: {e.strerror}") from None

  bar = None
  total = m.iterations(job.cfg)

  def open_bar():
    # Opened when training starts, not at the first update, so that rate and ETA count
    # from the first iteration.
    nonlocal bar
    if bar is None and progress:
      from tqdm import tqdm
      bar = tqdm(total=total, desc=f"{job.stem} {m.name} x{cfg.scale}", unit="it",
                 file=sys.stderr, dynamic_ncols=True)

  def on_compiled(seconds):
    print(f"compiled the training step in {seconds:.1f} s", file=sys.stderr)
    open_bar()

  def advance(n, losses):
    open_bar()
    bar.update(n)
    if losses:
      bar.set_postfix_str(losses)

  h, w = job.loaded.pixels.shape[:2]
  print(f"running {m.name} x{cfg.scale} on {job.stem} ({w}x{h}, {jax.devices()[0].platform})",
        file=sys.stderr)
  ctx = job_lib.Context(single=True, progress=advance if progress else None,
                        on_compiled=on_compiled, tile=tile,
                        info={"preset": preset, "ablations": ablations})
  records = []
  try:
    job_lib.run_jobs(m, [job], seed, ctx, on_done=lambda _, r: records.append(r),
                     raise_errors=True)
  except ValueError as e:
    raise UserError(str(e).splitlines()[0]) from None
  finally:
    if bar is not None:
      bar.close()
  return records[0]


def main(argv):
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Hide backend-probing INFO lines.
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.merge:
    return _merge()
  _set_numerics()
  from ikejax.runs import methods
  m = methods.get(FLAGS.method)
  if m.name != "ike":
    for flag in _IKE_ONLY:
      if FLAGS[flag].present:
        raise UserError(f"--{flag} applies to --method ike only")
    if FLAGS.batch not in (None, 1):
      raise UserError(f"--batch applies to --method ike only ({m.name} runs one image at a "
                      "time)")
  path, is_folder = _input()
  if is_folder:
    if FLAGS.hr is not None:
      raise UserError("a folder run takes --gt GT_DIR for its ground truths, not --hr")
    return run_folder_cli(m, path)
  for flag in ("gt", "batch", "checkpoint_every", "distributed", "coordinator_address",
               "num_processes", "process_id", "shard"):
    if FLAGS[flag].present:
      raise UserError(f"--{flag} needs a folder input (-i DIR or a glob)")
  preset, cfg = _config(m)
  record = _run_one(m, cfg, preset, list(FLAGS.ablate) if m.name == "ike" else [], path,
                    FLAGS.out, FLAGS.seed, FLAGS.hr, FLAGS.progress, FLAGS.kernel,
                    _check_tile(FLAGS.tile))
  line = f"wrote {record['outputs']['sr']} {tuple(record['output_shape'])}"
  for name, sc in record["scores"].items():
    name = m.name if name == "ikejax" and m.name != "ike" else name
    line += f"  {name}: Y-PSNR {sc['psnr_y']:.2f} dB SSIM {sc['ssim_y']:.4f}"
  print(line)


def _set_numerics() -> None:
  """`--precision` and `--conv`, before anything is traced (neither starts a backend)."""
  import jax

  from ikejax import ops
  jax.config.update("jax_default_matmul_precision",
                    "highest" if FLAGS.precision == "highest" else None)
  conv = FLAGS.conv if FLAGS["conv"].present else os.environ.get("IKEJAX_CONV", "auto")
  try:
    ops.set_conv_formulation(conv)
  except ValueError as e:
    raise UserError(f"IKEJAX_CONV: {e}") from None


def _merge() -> None:
  """`--merge -o OUT`: the per-process manifests of OUT joined into one."""
  if any(FLAGS[n].value is not None for n in ("input", "image", "images")):
    raise UserError("--merge takes only -o OUT (the folder of the shards' outputs)")
  from ikejax.runs import folder
  try:
    counts = folder.merge_manifests(FLAGS.out)
  except ValueError as e:
    raise UserError(str(e).splitlines()[0]) from None
  missing = counts.pop("missing_shares")
  print(f"merged: {counts['done'] + counts['done earlier']} done, {counts['failed']} failed, "
        f"{counts['pending']} pending; manifest in {FLAGS.out}"
        + (f"; shares {missing} have no manifest yet" if missing else ""))


def _report_folder(jobs) -> None:
  status = [j.row["status"] for j in jobs]
  failed = [j for j in jobs if j.row["status"] == "failed"]
  for j in failed:
    print(f"failed: {j.path}: {j.row['error']}", file=sys.stderr)
  print(f"{status.count('done')} done, {status.count('done earlier')} done earlier, "
        f"{len(failed)} failed; manifest in {FLAGS.out}")
  if failed:
    sys.exit(1)


def run_folder_cli(m, spec: str) -> None:
  """A folder or glob: sets up devices (and hosts) before JAX starts, then `run_folder`."""
  if FLAGS.batch is not None and FLAGS.batch < 1:
    raise UserError(f"--batch must be >= 1, got {FLAGS.batch}")
  if FLAGS.checkpoint_every < 0:
    raise UserError(f"--checkpoint_every must be >= 0, got {FLAGS.checkpoint_every}")
  from ikejax.runs import batch, folder
  shard = None
  if FLAGS.shard is not None:
    if FLAGS.distributed:
      raise UserError("--shard runs independent processes; it does not go with --distributed")
    try:
      shard = folder.parse_shard(FLAGS.shard)
    except ValueError as e:
      raise UserError(str(e)) from None
  if FLAGS.batch is not None:
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
  preset, cfg = _config(m)
  try:
    jobs = folder.run_folder(
        spec, FLAGS.out, cfg, method=m.name, preset=preset,
        ablations=FLAGS.ablate if m.name == "ike" else (), seed=FLAGS.seed,
        batch_size=FLAGS.batch, gt_dir=FLAGS.gt, kernel_spec=FLAGS.kernel,
        checkpoint_every=FLAGS.checkpoint_every,
        process_index=shard[0] if shard else jax.process_index(),
        process_count=shard[1] if shard else jax.process_count(), progress=FLAGS.progress,
        tile=_check_tile(FLAGS.tile))
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


def run_cli() -> None:
  """Entry point of `ikejax`, `python -m ikejax` and `python -m ikejax.main`."""
  from ikejax.imaging.image_io import ImageError
  from ikejax.loop import NonFiniteLossError
  if "input" not in flags.FLAGS:
    flags.FLAGS.append_flag_values(FLAGS)
    for name in FLAGS:  # listed by --help as this program's flags, whatever ran it
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
  sys.modules["__main__"].__doc__ = __doc__  # --help's text
  try:
    app.run(main, flags_parser=_parse_flags)
  except (UserError, ImageError, NonFiniteLossError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except OSError as e:  # e.g. an unwritable output directory.
    print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  run_cli()
