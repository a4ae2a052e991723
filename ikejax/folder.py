"""Folder runs: many zero-shot jobs, batched, resumable, with a manifest.

  python -m ikejax.main --images DIR_OR_GLOB --out DIR [--batch B] [--gt DIR]

What a run does, in order:
  1. lists the images (a folder's image files, or a glob), sorted, and keeps
     this process's share (`share`: image k goes to process k mod P);
  2. skips images whose record and SR exist from an earlier run with the same
     config and seed ("done earlier");
  3. reads the rest; an unreadable, corrupt or too-small file is reported
     ("failed", with its one-line reason) and the others go on;
  4. trains them B at a time (`batch.fit_batch`; images that need a smaller
     crop than the preset's form batches of their own) and writes each
     image's outputs (`results.write_outputs`) as soon as its batch ends;
  5. rewrites `manifest.json` and `manifest.csv` atomically after every image.

Every file is written atomically and each image's record last, so a run
killed at any point keeps every finished image and no half-written file; a
rerun does the rest. With `checkpoint_every`, the batched state is saved
every that many iterations (`<out>/.checkpoints/`), and a rerun resumes the
interrupted batch mid-training, on the same trajectory. Every image is
trained with the key of `seed`, so its result equals a single-image run
(`python -m ikejax.main --image ... --seed S`) whatever batch it lands in.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

from ikejax import image_io, results, spectral, train
from ikejax.configs import IKEConfig

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".gif")
MANIFEST_FIELDS = ("image", "status", "seconds", "error", "psnr_y", "ssim_y",
                   "bicubic_psnr_y", "bicubic_ssim_y", *results.LOSS_KEYS, "sr")
FINISHED = ("done", "done earlier")  # manifest statuses of an image whose outputs exist


class FolderError(ValueError):
  """A problem with the run as a whole (no images, bad --gt): one line."""


def list_images(spec: str) -> list[str]:
  """The image files of a folder (by extension), or those matching a glob; sorted.

  Raises:
    FolderError: if nothing matches.
  """
  return list_inputs(spec)[0]


def list_inputs(spec: str) -> tuple[list[str], list[dict]]:
  """`(images, skipped)`: a folder's image files (by extension) or a glob's files, sorted,
  and the folder's other entries as `{"file", "reason"}` rows.

  Raises:
    FolderError: if nothing matches.
  """
  skipped = []
  if os.path.isdir(spec):
    paths = []
    for f in sorted(os.listdir(spec)):
      full = os.path.join(spec, f)
      if f.startswith("."):
        reason = "hidden file"
      elif not os.path.isfile(full):
        reason = "not a file"
      elif not f.lower().endswith(IMAGE_EXTENSIONS):
        reason = "not an image extension (" + " ".join(IMAGE_EXTENSIONS) + ")"
      else:
        paths.append(full)
        continue
      skipped.append({"file": full, "reason": reason})
  else:
    paths = [p for p in glob.glob(spec) if os.path.isfile(p)]
  if not paths:
    what = "no image files in" if os.path.isdir(spec) else "no files match"
    raise FolderError(f"{what} {spec}")
  return sorted(paths), skipped


def share(paths: Sequence[str], index: int, count: int) -> list[str]:
  """Process `index` of `count` takes images index, index + count, ..."""
  return list(paths[index::count])


def ground_truth(gt_dir: Optional[str], image: str) -> Optional[str]:
  """The file of `gt_dir` with the image's stem (any image extension), or None."""
  if gt_dir is None:
    return None
  stem = os.path.splitext(os.path.basename(image))[0]
  for ext in IMAGE_EXTENSIONS:
    for cand in (stem + ext, stem + ext.upper()):
      if os.path.isfile(os.path.join(gt_dir, cand)):
        return os.path.join(gt_dir, cand)
  return None


@dataclasses.dataclass
class Job:
  """One image of the run.

  Attributes:
    path: the LR file; stem names its outputs.
    outputs: `results.output_paths`.
    gt: ground-truth file or None.
    row: its manifest row (status, seconds, scores, error).
    loaded, x, hr, cfg, warning: filled when the image is read.
    son_kernel: `(kernel, info)` its sons are made with (`spectral.son_kernel`), or None.
    source: the image file's `image_io.file_fingerprint` (recorded; matched on reuse).
    redo: why an earlier finished result in the output folder is not reused, or None.
  """
  path: str
  outputs: dict
  gt: Optional[str]
  row: dict
  loaded: Optional[image_io.LoadedImage] = None
  x: Optional[np.ndarray] = None
  hr: Optional[np.ndarray] = None
  cfg: Optional[IKEConfig] = None
  warning: Optional[str] = None
  son_kernel: Optional[tuple] = None
  source: Optional[dict] = None
  redo: Optional[str] = None


def _row_from_record(path: str, record: dict, status: str) -> dict:
  row = {"image": path, "status": status, "sr": record["outputs"]["sr"],
         "seconds": record.get("timings", {}).get("total_s")}
  for k in results.LOSS_KEYS:
    row[k] = record.get("final_losses", {}).get(k)
  for name, prefix in (("ikejax", ""), ("bicubic", "bicubic_")):
    score = record.get("scores", {}).get(name)
    if score:
      row[prefix + "psnr_y"], row[prefix + "ssim_y"] = score["psnr_y"], score["ssim_y"]
  return row


def _fail(job: Job, message: str, seconds: Optional[float] = None) -> None:
  job.row.update(status="failed", error=message, seconds=seconds)


def _earlier_rows(out_dir: str, suffix: str) -> list[dict]:
  """The rows of an earlier run's manifest in `out_dir` ([] when none or unreadable)."""
  try:
    with open(os.path.join(out_dir, f"manifest{suffix}.json"), encoding="utf-8") as f:
      rows = json.load(f)["images"]
    return [r for r in rows if isinstance(r, dict) and "image" in r]
  except (OSError, ValueError, KeyError, TypeError):
    return []


def write_manifest(out_dir: str, jobs: Sequence[Job], run_info: dict, suffix: str = "",
                   earlier: Sequence[dict] = ()) -> None:
  """`manifest<suffix>.json` (run info, rows, skipped files) and `.csv` (rows), atomic.

  `earlier`: rows of an earlier manifest; those of images this run neither lists nor
  overwrites are kept (after this run's): rerunning part of a folder drops no row.
  """
  rows = [{k: j.row.get(k) for k in MANIFEST_FIELDS} for j in jobs]
  # An earlier row stays unless this run lists its image or writes its outputs.
  mine = {os.path.abspath(j.path) for j in jobs} | {os.path.abspath(j.outputs["sr"])
                                                    for j in jobs}
  rows += [{k: r.get(k) for k in MANIFEST_FIELDS} for r in earlier
           if not {os.path.abspath(r["image"]), os.path.abspath(r.get("sr") or "")} & mine]
  counts = {s: sum(r["status"] == s for r in rows)
            for s in ("done", "done earlier", "failed", "pending")}
  image_io.write_json_atomic(os.path.join(out_dir, f"manifest{suffix}.json"),
                             {"run": run_info, "counts": counts, "images": rows,
                              "skipped": run_info.get("skipped", [])})
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
  writer.writeheader()
  for r in rows:
    writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
  image_io.write_text_atomic(os.path.join(out_dir, f"manifest{suffix}.csv"), buf.getvalue())


def why_not_reused(record: dict, same_settings: bool, source: dict) -> Optional[str]:
  """None when a finished record may stand for this job, else why not.

  `source`: `image_io.file_fingerprint` of the image; the record must carry the same
  content hash (a file of the same name with other pixels is another job).
  """
  if (record.get("input") or {}).get("sha256") != source["sha256"]:
    return "the earlier result was made from another input file"
  if not same_settings:
    return "the earlier result was from a run with other settings"
  return None


def _same_settings(record: dict, cfg: IKEConfig, seed: int) -> bool:
  want = dataclasses.asdict(cfg)
  got = record.get("config", {})
  # The crop may have been adapted to a small image; the rest must match.
  same = all(got.get(k) == v for k, v in want.items() if k not in ("crop", "log_every"))
  return same and record.get("seed") == seed


def new_jobs(paths: Sequence[str], out_dir: str, scale: int, gt_dir: Optional[str]) -> list[Job]:
  """One pending job per image; refuses any output that names any input of the run.

  Every output is checked against every image and ground truth (an image's output may
  be another image: `a.png` -> `a_x2.png`), through links, before anything is read.
  Two images with one file name: the second fails (its outputs would collide).

  Raises:
    FolderError: an output would overwrite an input.
  """
  jobs, stems = [], {}
  for p in paths:
    stem = os.path.splitext(os.path.basename(p))[0]
    jobs.append(Job(path=p, outputs=results.output_paths(out_dir, stem, scale),
                    gt=ground_truth(gt_dir, p), row={"image": p, "status": "pending"}))
  inputs = [j.path for j in jobs] + [j.gt for j in jobs if j.gt]
  for job in jobs:
    clash = results.overwritten_input(job.outputs, inputs)
    if clash:
      raise FolderError(f"output {clash} would overwrite an input file; choose another --out")
    stem = os.path.splitext(os.path.basename(job.path))[0]
    if stem in stems:
      _fail(job, f"same file name as {stems[stem]}: its outputs would collide")
    stems.setdefault(stem, job.path)
  return jobs


def prepare_out_dir(out_dir: str) -> None:
  """Creates the output folder; refuses one that cannot be written (before any training)."""
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise FolderError(f"cannot create output folder {out_dir}: {e.strerror}") from None
  if not os.access(out_dir, os.W_OK | os.X_OK):
    raise FolderError(f"output folder {out_dir} is not writable")


def _load(job: Job, cfg: IKEConfig) -> None:
  """Reads the image (and ground truth); raises ValueError with a one-line reason."""
  job.source = image_io.file_fingerprint(job.path)
  loaded = image_io.read_image(job.path)
  h, w = loaded.pixels.shape[:2]
  job.cfg, job.warning = train.adapt_crop(cfg, h, w)
  if job.gt is not None:
    hr = image_io.read_image(job.gt).pixels
    results.check_hr(hr, loaded, cfg.scale, f"ground truth {job.gt}")
    job.hr = hr
  job.loaded = loaded
  job.x = image_io.to_model_range(loaded.pixels, loaded.bit_depth)
  job.son_kernel = spectral.son_kernel(cfg, loaded.pixels, loaded.bit_depth)


def _batches(jobs: Sequence[Job], size: int) -> list[list[Job]]:
  """Consecutive groups of `size` jobs sharing a config (crop), in order."""
  groups: dict = {}
  for j in jobs:
    groups.setdefault(j.cfg, []).append(j)
  return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def _batch_id(batch: Sequence[Job], cfg: IKEConfig, seed: int, slots: int) -> str:
  parts = [json.dumps(dataclasses.asdict(cfg), sort_keys=True), str(seed), str(slots)]
  for j in batch:
    st = os.stat(j.path)
    parts.append(f"{os.path.abspath(j.path)}|{st.st_size}|{st.st_mtime_ns}")
  return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class _Checkpoints:
  """Batched states saved under `<out>/.checkpoints/<batch id>.{msgpack,json}`."""

  def __init__(self, out_dir: str):
    self.dir = os.path.join(out_dir, ".checkpoints")

  def _paths(self, bid: str) -> tuple[str, str]:
    return (os.path.join(self.dir, bid + ".msgpack"), os.path.join(self.dir, bid + ".json"))

  def save(self, bid: str, state, histories: list, images: list[str]) -> None:
    import jax
    from flax import serialization
    os.makedirs(self.dir, exist_ok=True)
    blob, meta = self._paths(bid)
    host = jax.device_get(state)
    with image_io.atomic_write(blob, "wb") as f:
      f.write(serialization.to_bytes(host))
    # The metadata names the state file's step; written second, read first.
    image_io.write_json_atomic(meta, {"step": int(np.asarray(host.step)[0]), "images": images,
                                      "histories": histories})

  def load(self, bid: str, template):
    """(state, histories) of a saved batch, or None when there is none or it is unreadable."""
    from flax import serialization
    blob, meta = self._paths(bid)
    try:
      with open(meta, encoding="utf-8") as f:
        info = json.load(f)
      with open(blob, "rb") as f:
        state = serialization.from_bytes(template, f.read())
    except (OSError, ValueError, KeyError, TypeError):
      return None
    if int(np.asarray(state.step)[0]) != info["step"]:
      return None
    return state, info["histories"]

  def drop(self, bid: str) -> None:
    for p in self._paths(bid):
      if os.path.exists(p):
        os.remove(p)
    with contextlib.suppress(OSError):  # Only when no other batch's checkpoint is left.
      os.rmdir(self.dir)


def _plan(paths: Sequence[str], out_dir: str, cfg: IKEConfig, seed: int,
          gt_dir: Optional[str]) -> tuple[list[Job], list[Job]]:
  """All jobs with their first manifest rows, and those still to train.

  Reads every image (and ground truth) that has no finished record; failures
  to read become "failed" rows, records of the same settings "done earlier".

  Raises:
    FolderError: if an output would overwrite an input.
  """
  jobs, todo = new_jobs(paths, out_dir, cfg.scale, gt_dir), []
  for job in jobs:
    if job.row["status"] == "failed":
      continue
    stem = os.path.splitext(os.path.basename(job.path))[0]
    if gt_dir is not None and job.gt is None:
      job.row["error"] = f"no ground truth named {stem}.* in {gt_dir}"
    record = results.is_finished(job.outputs)
    try:
      _load(job, cfg)
    except (ValueError, OSError) as e:  # ImageError is a ValueError.
      _fail(job, str(e))
      continue
    why = None if record is None else why_not_reused(
        record, _same_settings(record, job.cfg, seed), job.source)
    if record is not None and why is None:
      job.row = _row_from_record(job.path, record, "done earlier")
      continue
    if why is not None:
      job.redo = f"redone: {why}"
    todo.append(job)
  return jobs, todo


def _finish(job: Job, state, res, i: int, train_each: float, info: dict) -> None:
  """Writes image i's outputs (or marks it failed) and sets its manifest row."""
  t0 = time.perf_counter()
  try:
    if res.bad_steps[i] >= 0:
      raise train.NonFiniteLossError(
          f"a loss became NaN or inf at iteration {res.bad_steps[i] + 1}")
    timings = {"compile_s": res.compile_seconds, "train_s": res.train_seconds,
               "s_per_iter": res.train_seconds / max(1, res.iterations),
               "train_share_s": train_each}
    record = results.write_outputs(
        state, job.x, job.loaded, job.cfg, job.outputs,
        protect=[job.path] + ([job.gt] if job.gt else []), hr=job.hr,
        history=res.histories[i], timings=timings,
        info={"image": job.path, "input": job.source, **info, "crop_warning": job.warning,
              "validation": res.validations[i] if res.validations else None},
        t_start=t0 - train_each,  # total_s: its share of the batch plus its own writing.
        given_kernel=job.son_kernel)
  except (ValueError, OSError, train.NonFiniteLossError) as e:
    _fail(job, str(e), seconds=train_each + time.perf_counter() - t0)
    return
  notes = [n for n in (job.redo, job.row.get("error")) if n]  # e.g. no ground truth
  job.row = _row_from_record(job.path, record, "done")
  if notes:
    job.row["error"] = "; ".join(notes)


def run_folder(spec: str, out_dir: str, cfg: IKEConfig, *, preset: str = "paper",
               ablations: Sequence[str] = (), seed: int = 0, batch_size: int = 1,
               gt_dir: Optional[str] = None, checkpoint_every: int = 0,
               process_index: int = 0, process_count: int = 1, progress: bool = True,
               on_image_done: Optional[Callable[[Job], None]] = None) -> list[Job]:
  """Runs every image of `spec` (this process's share) and writes the manifest.

  Args:
    spec: a folder or a glob.
    out_dir: output folder (created); also holds the manifest.
    cfg: the config every image starts from (crop adapted per image).
    preset, ablations, seed: recorded; `seed` keys every image's run.
    batch_size: images trained per compiled step.
    gt_dir: folder of ground truths matched by file stem (Y-PSNR/SSIM).
    checkpoint_every: save the batched state every this many iterations.
    process_index, process_count: this process's share (`jax.distributed`).
    progress: one progress bar for the whole run.
    on_image_done: called after each image's outputs and manifest row.

  Returns:
    The jobs, with their manifest rows.

  Raises:
    FolderError: no images, or an output would overwrite an input.
  """
  import jax

  from ikejax import batch as batch_lib

  if gt_dir is not None and not os.path.isdir(gt_dir):
    raise FolderError(f"--gt {gt_dir} is not a folder")
  listed, skipped = list_inputs(spec)
  paths = share(listed, process_index, process_count)
  prepare_out_dir(out_dir)
  suffix = "" if process_count == 1 else f".process{process_index}"
  earlier = _earlier_rows(out_dir, suffix)
  devices = jax.local_devices()
  run_info = {"images": spec, "out": out_dir, "preset": preset, "ablations": list(ablations),
              "seed": seed, "batch": batch_size, "scale": cfg.scale, "iters": cfg.iters,
              "devices": [str(d) for d in devices], "process": [process_index, process_count],
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "skipped": skipped}
  jobs, todo = _plan(paths, out_dir, cfg, seed, gt_dir)
  write_manifest(out_dir, jobs, run_info, suffix, earlier)

  bar = None
  if progress and todo:
    from tqdm import tqdm
    bar = tqdm(total=len(todo) * cfg.iters, unit="it", desc=f"{len(todo)} images x{cfg.scale}",
               file=sys.stderr, dynamic_ncols=True)

  def postfix(extra: str = "") -> None:
    if bar is not None:
      status = [j.row["status"] for j in jobs]
      bar.set_postfix_str(f"done {status.count('done')} failed {status.count('failed')}" + extra)

  checkpoints = _Checkpoints(out_dir)
  # One padded size per config: every batch of a run shares one compiled step.
  pad_to = {}
  for j in todo:
    h, w = pad_to.get(j.cfg, (0, 0))
    pad_to[j.cfg] = (max(h, j.x.shape[0]), max(w, j.x.shape[1]))
  try:
    postfix()
    for group in _batches(todo, max(1, batch_size)):
      gcfg = group[0].cfg
      slots, used = batch_lib.slots_for(len(group), devices)
      bid = _batch_id(group, gcfg, seed, slots)
      resumed, histories = None, None
      if checkpoint_every:
        template = jax.eval_shape(lambda k, c=gcfg: batch_lib.init_states(k, cfg=c),
                                  jax.random.split(jax.random.key(0), slots))
        loaded = checkpoints.load(bid, template)
        if loaded is not None:
          resumed, histories = loaded
      last = {"it": int(np.asarray(resumed.step)[0]) if resumed is not None else 0}
      if bar is not None:
        bar.update(len(group) * last["it"])
      t_batch = time.perf_counter()

      def on_log(done, per_image, bad, last=last):
        if bar is not None:
          bar.update(sum(1 for b in bad if b < 0) * (done - last["it"]))
          live = [m for m, b in zip(per_image, bad) if b < 0] or per_image
          mean = lambda k: float(np.mean([m[k] for m in live]))
          postfix(f" | fwd {mean('csr_fwd'):.3f} E {mean('energy'):.4f} "
                  f"bwd {mean('csr_bwd'):.3f} inter {mean('inter'):.4f} "
                  f"D {mean('d_lr'):.3f}/{mean('d_hr'):.3f}")
        last["it"] = done

      def on_checkpoint(done, state, hist, group=group, bid=bid):
        checkpoints.save(bid, state, hist, [j.path for j in group])

      res = batch_lib.fit_batch(
          [j.x for j in group], gcfg, [jax.random.key(seed)] * len(group), devices=used,
          pad_to=pad_to[gcfg], state=resumed, histories=histories, on_log=on_log,
          checkpoint_every=checkpoint_every, on_checkpoint=on_checkpoint,
          son_kernels=[j.son_kernel[0] for j in group] if group[0].son_kernel else None)
      train_each = (time.perf_counter() - t_batch) / len(group)
      # Per-image states on the host: inference then runs on the default device, never on
      # a slice of a multi-device array (that hung under jax.distributed on CPU).
      host_state = jax.device_get(res.state)
      info = {"preset": preset, "ablations": list(ablations), "seed": seed,
              "batch": {"size": len(group), "devices": len(used)}}
      for i, job in enumerate(group):
        _finish(job, batch_lib.take(host_state, i), res, i, train_each, info)
        write_manifest(out_dir, jobs, run_info, suffix, earlier)
        postfix()
        if on_image_done is not None:
          on_image_done(job)
      if checkpoint_every:
        checkpoints.drop(bid)
  finally:
    if bar is not None:
      bar.close()
  return jobs
