"""The one path from an image to its outputs, for every method, one image or a folder.

  new_jobs -> read (`Job.read`: image, ground truth, given kernel, checked before training)
    -> `Method.prepare` (per-image config, e.g. IKE's crop and son kernel)
    -> `run_jobs`: groups of jobs that train together (`Method.group_key`, at most `batch`)
       -> `Method.fit` -> one `Outcome` per job -> `write` (every output file, the record last)

Single-image runs (`ikejax -i x.png`) and folder runs (`ikejax.runs.folder`) both go through
`run_jobs`; a single image raises its error, a folder records it in its manifest and goes on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from typing import Any, Callable, Hashable, Optional, Protocol, Sequence

import numpy as np

from ikejax.imaging import image_io
from ikejax.runs import records


@dataclasses.dataclass
class Job:
  """One image of a run.

  Attributes:
    path: the LR file, or None for the embedded default image.
    stem: names the outputs (`<stem>_x<s>...`).
    outputs: `records.output_paths`.
    gt: ground-truth file, or None.
    row: the manifest row (status, seconds, scores, error).
    loaded, x, hr: the image as read, in [-1, 1], and the ground-truth pixels (after `read`).
    source: the image file's `image_io.file_fingerprint` (recorded; matched on reuse).
    given_kernel: `(kernel, path)` of `--kernel`, or None.
    cfg: the method's config for this image (`Method.prepare` may adapt it).
    extra: what `Method.prepare` computed for the fit (e.g. IKE's son kernel).
    notes: remarks for the manifest's `error` column (a missing ground truth, a redo).
  """
  path: Optional[str]
  stem: str
  outputs: dict
  gt: Optional[str] = None
  row: dict = dataclasses.field(default_factory=dict)
  loaded: Optional[image_io.LoadedImage] = None
  x: Optional[np.ndarray] = None
  hr: Optional[np.ndarray] = None
  source: Optional[dict] = None
  given_kernel: Optional[tuple[np.ndarray, str]] = None
  cfg: Any = None
  extra: dict = dataclasses.field(default_factory=dict)
  notes: list = dataclasses.field(default_factory=list)

  @property
  def protect(self) -> list[str]:
    """The job's input files: never overwritten."""
    return [p for p in (self.path, self.gt, self.given_kernel and self.given_kernel[1]) if p]

  def fail(self, message: str, seconds: Optional[float] = None) -> None:
    self.row.update(status="failed", error=message, seconds=seconds)


@dataclasses.dataclass
class Outcome:
  """What a method made of one job (or, with `error` set, why it made nothing).

  Attributes:
    sr: `[sH, sW, 3]` result in [-1, 1].
    llr: the method's downscale of the input in [-1, 1], or None.
    kernel, kernel_info: the degradation kernel (operator window) and what it is.
    history: logged metrics; `loss_keys` those the loss-curve picture plots.
    timings: seconds (`compile_s`, `train_s`, `inference_s`, ...).
    info: fields added to the record (preset, validation, ...).
    label: the method's name on the comparison picture.
    seconds: the job's share of its group's wall time (the record's `total_s` adds writing).
  """
  sr: Optional[np.ndarray] = None
  llr: Optional[np.ndarray] = None
  kernel: Optional[np.ndarray] = None
  kernel_info: dict = dataclasses.field(default_factory=dict)
  history: list = dataclasses.field(default_factory=list)
  loss_keys: Sequence[str] = ()
  timings: dict = dataclasses.field(default_factory=dict)
  info: dict = dataclasses.field(default_factory=dict)
  label: str = "SR"
  seconds: float = 0.0
  error: Optional[str] = None


@dataclasses.dataclass
class Context:
  """How `Method.fit` runs a group: batch size and devices, progress, checkpoints.

  Attributes:
    batch: jobs per compiled step (methods that batch).
    devices: where to shard a batch (None: this process's devices).
    progress: `progress(iterations, postfix)` advances the run's bar (None: no bar).
    checkpoint_every, checkpoints: save a batch's state every this many iterations in a
      `folder.Checkpoints` (None: never).
    single: one image run on its own (IKE then trains with `train.fit`).
    on_compiled: called with a fit's compile time.
    all_jobs: every job the run trains (IKE pads a folder's images to one size).
    info: run-level fields every record carries (preset, ablations).
    tile: whole-image inference on tiles of this side (`ikejax.tiles`): None picks by
      image size and backend, 0 runs whole.
  """
  batch: int = 1
  devices: Optional[Sequence[Any]] = None
  progress: Optional[Callable[[int, str], None]] = None
  checkpoint_every: int = 0
  checkpoints: Any = None
  single: bool = False
  on_compiled: Optional[Callable[[float], None]] = None
  all_jobs: Sequence[Job] = ()
  info: dict = dataclasses.field(default_factory=dict)
  tile: Optional[int] = None

  def tile_for(self, job: "Job") -> Optional[int]:
    """The tile side for the job's input (None: whole)."""
    import jax
    from ikejax import tiles
    h, w = job.x.shape[:2]
    return tiles.choose_tile(self.tile, h, w, jax.default_backend())


class Method(Protocol):
  """A super-resolution method: its config, how it trains on images, what it outputs.

  A new method is one module implementing this plus one line in `ikejax.runs.methods`.
  """
  name: str
  presets: Sequence[str]
  default_preset: str
  batches: bool  # trains groups of images in one compiled step (`group_key`, `Context.batch`)

  def config(self, preset: str, scale: int, overrides: dict) -> Any:
    """The validated config (raises ValueError with one line)."""

  def settings(self, cfg: Any) -> dict:
    """The config as the record stores it (`record['config']`)."""

  def same_settings(self, record: dict, cfg: Any) -> bool:
    """Whether a finished record was made with these settings (its result may be reused)."""

  def iterations(self, cfg: Any) -> int:
    """Units of work of one job, for the progress bar."""

  def prepare(self, cfg: Any, job: Job) -> None:
    """Sets `job.cfg` (and `job.extra`) for an image that was read; raises ValueError."""

  def group_key(self, job: Job) -> Hashable:
    """Jobs with equal keys may be fitted together (None: each on its own)."""

  def fit(self, jobs: Sequence[Job], seed: int, ctx: Context) -> list[Outcome]:
    """Trains on the jobs' images (one group) and returns one `Outcome` per job."""


class PerImage:
  """What a method that trains one image at a time on a fixed config shares (a base for
  `Method`s): its config is recorded as `cfg.asdict()`, used as given for every image, and
  `fit` times `self._fit(job, seed, ctx) -> Outcome` on each job of a group of one."""
  batches = False

  def settings(self, cfg: Any) -> dict:
    return cfg.asdict()

  def same_settings(self, record: dict, cfg: Any) -> bool:
    return record.get("config") == as_stored(self.settings(cfg))

  def prepare(self, cfg: Any, job: Job) -> None:
    job.cfg = cfg

  def group_key(self, job: Job) -> Hashable:
    return None

  def fit(self, jobs: Sequence[Job], seed: int, ctx: Context) -> list[Outcome]:
    outs = []
    for job in jobs:
      t0 = time.perf_counter()
      out = self._fit(job, seed, ctx)
      out.seconds = time.perf_counter() - t0
      outs.append(out)
    return outs


def find_kernel(spec: str, image_path: Optional[str], scale: int) -> str:
  """The kernel file given by `--kernel spec` for one image.

  A file is used for every image. In a folder, for the image `<stem>.png`, the
  first that exists of: `<stem>_x<s>_kernel.npy` (an ikejax run's estimate, any
  method), `<stem>.npy`, `<stem>.mat`, and for DIV2KRK's `im_<n>` its
  ground-truth `kernel_<n>.mat`.

  Raises:
    ValueError: one line, naming the files looked for.
  """
  if os.path.isfile(spec):
    return spec
  if not os.path.isdir(spec):
    raise ValueError(f"--kernel {spec}: no such file or folder")
  stem = os.path.splitext(os.path.basename(image_path or "astronaut"))[0]
  names = [f"{stem}_x{scale}_kernel.npy", f"{stem}.npy", f"{stem}.mat"]
  m = re.fullmatch(r"im_(\d+)", stem)
  if m:
    names.append(f"kernel_{m.group(1)}.mat")
  for name in names:
    if os.path.isfile(os.path.join(spec, name)):
      return os.path.join(spec, name)
  raise ValueError(f"no kernel for {stem} in {spec} (looked for {', '.join(names)})")


def given_kernel(spec: str, image_path: Optional[str], scale: int) -> tuple[np.ndarray, str]:
  """`find_kernel`'s file, loaded: `([k, k] kernel as stored, path)`.

  Raises:
    ValueError: one line, for a missing or unreadable file, a kernel that is not square
      and odd-sided, or one without positive taps.
  """
  path = find_kernel(spec, image_path, scale)
  k = image_io.load_kernel(path)  # ImageError is a ValueError
  if k.shape[0] % 2 == 0 or k.shape[0] != k.shape[1]:
    raise ValueError(f"kernel {path} is {k.shape}; expected a square, odd-sided kernel")
  if not np.any(k > 0):
    raise ValueError(f"kernel {path} has no positive taps; it must be a blur")
  return k, path


# `--kernel spectral`: each image's closed-form blind estimate instead of a file.
SPECTRAL = "spectral"


def spectral_kernel(loaded: image_io.LoadedImage, scale: int) -> tuple[np.ndarray, str]:
  """`(kernel, label)`: the image's spectral blind estimate (`ikejax.imaging.spectral`).

  Raises:
    ValueError: one line, for an image too small or flat to fit.
  """
  from ikejax.imaging import spectral
  pixels = np.asarray(loaded.pixels, np.float64) * (255.0 / (2 ** loaded.bit_depth - 1))
  k, info = spectral.estimate_kernel(pixels, scale)
  s = info["sigmas"]
  return k, f"spectral estimate (sigmas {s[1]:.2f} x {s[0]:.2f} px)"


def new_job(path: Optional[str], out_dir: str, scale: int, gt: Optional[str] = None) -> Job:
  stem = os.path.splitext(os.path.basename(path))[0] if path else "astronaut"
  return Job(path=path, stem=stem, outputs=records.output_paths(out_dir, stem, scale), gt=gt,
             row={"image": path, "status": "pending"})


def read(job: Job, scale: int, kernel_spec: Optional[str] = None,
         hr_label: Optional[str] = None) -> None:
  """Reads the job's image, ground truth and given kernel, and checks them against each
  other and the outputs before any training.

  Raises:
    ValueError: one line (`image_io.ImageError` is one).
  """
  if job.path is None:  # the embedded default job, with its HR
    lr_pixels, hr, _ = image_io.default_image(scale)
    job.loaded = image_io.LoadedImage(pixels=lr_pixels, bit_depth=8, was_gray=False, path=None)
    job.hr = hr
  else:
    job.loaded = image_io.read_image(job.path)  # a missing or bad file: its one-line error
    job.source = image_io.file_fingerprint(job.path)
  if job.gt is not None:
    job.hr = image_io.read_image(job.gt).pixels
  if job.hr is not None and job.gt is not None:
    records.check_hr(job.hr, job.loaded, scale, hr_label or f"ground truth {job.gt}")
  if kernel_spec == SPECTRAL:
    job.given_kernel = spectral_kernel(job.loaded, scale)
  elif kernel_spec is not None:
    job.given_kernel = given_kernel(kernel_spec, job.path, scale)
  clash = records.overwritten_input(job.outputs, job.protect)
  if clash:
    raise ValueError(f"output {clash} would overwrite an input file; choose another --out")
  job.x = image_io.to_model_range(job.loaded.pixels, job.loaded.bit_depth)


def write(job: Job, out: Outcome, method: Method, seed: int, run_info: dict) -> dict:
  """Every output file of a finished job, the record last; returns the record."""
  t0 = time.perf_counter()
  info = {"image": job.path or "embedded default (skimage astronaut, degraded)",
          "input": job.source, "method": method.name, **run_info, "seed": seed, **out.info,
          "config": method.settings(job.cfg)}
  return records.write_result(
      job.outputs, loaded=job.loaded, x=job.x, scale=job.cfg.scale, sr=out.sr, llr=out.llr,
      est_kernel=out.kernel, kernel_info=out.kernel_info, protect=job.protect, hr=job.hr,
      history=out.history, loss_keys=out.loss_keys, timings=dict(out.timings), info=info,
      t_start=t0 - out.seconds, label=out.label)


def groups(method: Method, jobs: Sequence[Job], size: int) -> list[list[Job]]:
  """Groups of at most `size` jobs sharing a `group_key`, in order of first appearance (a
  key of None: one job each, first)."""
  by_key: dict = {}
  out = []
  for j in jobs:
    key = method.group_key(j)
    if key is None:
      out.append([j])
    else:
      by_key.setdefault(key, []).append(j)
  for g in by_key.values():
    out += [g[i:i + size] for i in range(0, len(g), size)]
  return out


def run_jobs(method: Method, jobs: Sequence[Job], seed: int, ctx: Context, *,
             on_done: Optional[Callable[[Job, Optional[dict]], None]] = None,
             raise_errors: bool = False) -> None:
  """Fits and writes every job (all read and prepared), group by group.

  Each job's row becomes "done" with its scores, or "failed" with a one-line reason; with
  `raise_errors` (a single image) the first failure is raised instead.
  `on_done(job, record)` follows each job's outputs.
  """
  from ikejax.loop import NonFiniteLossError
  for group in groups(method, jobs, max(1, ctx.batch)):
    t0 = time.perf_counter()
    try:
      outcomes = method.fit(group, seed, ctx)
    except (ValueError, OSError, NonFiniteLossError) as e:  # the group fails, the run goes on
      if raise_errors:
        raise
      outcomes = [Outcome(error=str(e).splitlines()[0] if str(e) else type(e).__name__,
                          seconds=(time.perf_counter() - t0) / len(group)) for _ in group]
    for job, out in zip(group, outcomes):
      record = None
      t1 = time.perf_counter()
      try:
        if out.error is not None:
          raise NonFiniteLossError(out.error)
        record = write(job, out, method, seed, {**ctx.info, "tile": ctx.tile_for(job)})
      except (ValueError, OSError, NonFiniteLossError) as e:
        if raise_errors:
          raise
        job.fail(str(e).splitlines()[0] if str(e) else type(e).__name__,
                 seconds=out.seconds + time.perf_counter() - t1)
      else:
        notes = job.notes
        job.row = row_from_record(job.path, record, "done")
        if notes:
          job.row["error"] = "; ".join(notes)
      if on_done is not None:
        on_done(job, record)


def row_from_record(path: Optional[str], record: dict, status: str) -> dict:
  """A manifest row from a job's record."""
  row = {"image": path, "status": status, "sr": record["outputs"]["sr"],
         "seconds": record.get("timings", {}).get("total_s")}
  for k in records.LOSS_KEYS:
    row[k] = record.get("final_losses", {}).get(k)
  for name, prefix in (("ikejax", ""), ("bicubic", "bicubic_")):
    score = record.get("scores", {}).get(name)
    if score:
      row[prefix + "psnr_y"], row[prefix + "ssim_y"] = score["psnr_y"], score["ssim_y"]
  return row


def as_stored(settings: dict) -> Any:
  """`settings` as a JSON record holds them (tuples become lists)."""
  return json.loads(json.dumps(settings))
