"""Folder runs: many zero-shot jobs of one method, batched, resumable, with a manifest.

  ikejax -i DIR_OR_GLOB -o DIR [--method M] [--batch B] [--gt DIR]

What a run does, in order:
  1. lists the images (a folder's image files, or a glob), sorted, and keeps
     this process's share (`share`: image k goes to process k mod P); every other
     file of the folder is listed in the manifest with the reason it was skipped;
  2. refuses, before anything is read, an output path that is any input of the run;
  3. skips images whose record and SR exist from an earlier run of the same input
     file (content hash), method, settings and seed ("done earlier"), and redoes
     the others, saying why;
  4. reads the rest; an unreadable, corrupt or too-small file is reported
     ("failed", with its one-line reason) and the others go on;
  5. trains them through the one job path (`ikejax.runs.job.run_jobs`: IKE B at a
     time in one compiled step, the other methods one by one) and writes each
     image's outputs as soon as its group ends;
  6. rewrites `manifest.json` and `manifest.csv` atomically after every image,
     merged with the rows of an earlier run's manifest.

Every file is written atomically and each image's record last, so a run
killed at any point keeps every finished image and no half-written file; a
rerun does the rest. With `checkpoint_every`, IKE's batched state is saved
every that many iterations (`<out>/.checkpoints/`), and a rerun resumes the
interrupted batch mid-training, on the same trajectory. Every image is
trained with the key of `seed`, so its result follows a single-image run
(`ikejax -i x.png --seed S`) whatever batch it lands in.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import sys
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ikejax.imaging import image_io
from ikejax.runs import job as job_lib
from ikejax.runs import records
from ikejax.runs.job import Job

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".gif")
MANIFEST_FIELDS = ("image", "status", "seconds", "error", "psnr_y", "ssim_y",
                   "bicubic_psnr_y", "bicubic_ssim_y", *records.LOSS_KEYS, "sr")
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


def parse_shard(text: str) -> tuple[int, int]:
  """`'i/N'` -> `(i, N)`, `0 <= i < N` (`--shard`).

  Raises:
    ValueError: one line.
  """
  try:
    i, n = (int(v) for v in text.split("/"))
  except ValueError:
    raise ValueError(f"--shard takes i/N (e.g. 0/4), got {text!r}") from None
  if not 0 <= i < n:
    raise ValueError(f"--shard i/N needs 0 <= i < N, got {text!r}")
  return i, n


def merge_manifests(out_dir: str) -> dict:
  """Joins the per-process manifests of `out_dir` (`manifest.process<i>.json`, from
  `--shard i/N` or `--distributed`) into `manifest.json` and `.csv`; returns the counts.

  Raises:
    ValueError: one line: none found, or shares of different runs (process counts).
  """
  paths = sorted(glob.glob(os.path.join(glob.escape(out_dir), "manifest.process*.json")))
  if not paths:
    raise ValueError(f"no manifest.process*.json in {out_dir} to merge")
  parts = []
  for p in paths:
    try:
      with open(p, encoding="utf-8") as f:
        parts.append(json.load(f))
    except (OSError, ValueError) as e:
      raise ValueError(f"cannot read {p}: {e}") from None
  counts = {m["run"]["process"][1] for m in parts}
  if len(counts) != 1:
    raise ValueError(f"{out_dir} holds shares of runs split {sorted(counts)} ways; merge one")
  n = counts.pop()
  found = sorted(m["run"]["process"][0] for m in parts)
  rows = sorted((r for m in parts for r in m["images"]), key=lambda r: r["image"])
  skipped = sorted({json.dumps(s, sort_keys=True) for m in parts for s in m.get("skipped", [])})
  run = {**parts[0]["run"], "process": None, "merged_from": [os.path.basename(p) for p in paths],
         "missing_shares": [i for i in range(n) if i not in found],
         "skipped": [json.loads(s) for s in skipped]}
  jobs = [Job(path=r["image"], stem="", outputs={"sr": r.get("sr") or ""}, row=r) for r in rows]
  write_manifest(out_dir, jobs, run)
  return {s: sum(r["status"] == s for r in rows)
          for s in ("done", "done earlier", "failed", "pending")} | {
              "missing_shares": run["missing_shares"]}


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
    jobs.append(job_lib.new_job(p, out_dir, scale, ground_truth(gt_dir, p)))
  inputs = [j.path for j in jobs] + [j.gt for j in jobs if j.gt]
  for job in jobs:
    clash = records.overwritten_input(job.outputs, inputs)
    if clash:
      raise FolderError(f"output {clash} would overwrite an input file; choose another --out")
    if job.stem in stems:
      job.fail(f"same file name as {stems[job.stem]}: its outputs would collide")
    stems.setdefault(job.stem, job.path)
  return jobs


def prepare_out_dir(out_dir: str) -> None:
  """Creates the output folder; refuses one that cannot be written (before any training)."""
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise FolderError(f"cannot create output folder {out_dir}: {e.strerror}") from None
  if not os.access(out_dir, os.W_OK | os.X_OK):
    raise FolderError(f"output folder {out_dir} is not writable")


class Checkpoints:
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


def _plan(method, cfg, jobs: Sequence[Job], seed: int, gt_dir: Optional[str],
          kernel_spec: Optional[str]) -> list[Job]:
  """Reads and prepares every job without a reusable record; returns those to train.

  Failures to read become "failed" rows, records of the same input and settings
  "done earlier", and a record that may not be reused is redone with a note why.
  """
  todo = []
  for job in jobs:
    if job.row["status"] == "failed":
      continue
    if gt_dir is not None and job.gt is None:
      job.notes.append(f"no ground truth named {job.stem}.* in {gt_dir}")
    record = records.is_finished(job.outputs)
    try:
      job_lib.read(job, cfg.scale, kernel_spec)
      method.prepare(cfg, job)
    except (ValueError, OSError) as e:  # ImageError is a ValueError.
      job.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
      continue
    if record is not None:
      same = (record.get("method", "ike") == method.name and record.get("seed") == seed
              and method.same_settings(record, job.cfg))
      why = why_not_reused(record, same, job.source)
      if why is None:
        job.row = job_lib.row_from_record(job.path, record, "done earlier")
        continue
      job.notes.insert(0, f"redone: {why}")
    todo.append(job)
  return todo


def run_folder(spec: str, out_dir: str, cfg: Any, *, method: str = "ike", preset: str = "paper",
               ablations: Sequence[str] = (), seed: int = 0,
               batch_size: Optional[int] = None, gt_dir: Optional[str] = None,
               kernel_spec: Optional[str] = None,
               checkpoint_every: int = 0, process_index: int = 0, process_count: int = 1,
               progress: bool = True,
               on_image_done: Optional[Callable[[Job], None]] = None,
               tile: Optional[int] = None) -> list[Job]:
  """Runs every image of `spec` (this process's share) with one method; writes the manifest.

  Args:
    spec: a folder or a glob.
    out_dir: output folder (created); also holds the manifest.
    cfg: the method's config (`Method.config`) every image starts from.
    method: its name in `ikejax.runs.methods.REGISTRY`.
    preset, ablations, seed: recorded; `seed` keys every image's run.
    batch_size: images trained per compiled step (methods that batch; None: one per local
      accelerator, 1 on CPU, `batch.default_batch_size`).
    gt_dir: folder of ground truths matched by file stem (Y-PSNR/SSIM).
    kernel_spec: `--kernel` (a file, or a folder of each image's), or None.
    checkpoint_every: save a batch's state every this many iterations.
    process_index, process_count: this process's share (`jax.distributed` or `--shard`).
    progress: one progress bar for the whole run.
    on_image_done: called after each image's outputs and manifest row.
    tile: whole-image inference on tiles of this side (None: by size and backend; 0: whole).

  Returns:
    The jobs, with their manifest rows.

  Raises:
    FolderError: no images, a bad --gt, or an output that would overwrite an input.
  """
  from ikejax.runs import methods

  m = methods.get(method)
  if batch_size is None:
    from ikejax.runs import batch as batch_lib
    batch_size = batch_lib.default_batch_size() if m.batches else 1
  if gt_dir is not None and not os.path.isdir(gt_dir):
    raise FolderError(f"--gt {gt_dir} is not a folder")
  listed, skipped = list_inputs(spec)
  paths = share(listed, process_index, process_count)
  prepare_out_dir(out_dir)
  suffix = "" if process_count == 1 else f".process{process_index}"
  earlier = _earlier_rows(out_dir, suffix)
  run_info = {"images": spec, "out": out_dir, "method": method, "preset": preset,
              "ablations": list(ablations), "seed": seed, "batch": batch_size,
              "scale": cfg.scale, "iters": getattr(cfg, "iters", None),
              "process": [process_index, process_count],
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "skipped": skipped}
  jobs = new_jobs(paths, out_dir, cfg.scale, gt_dir)
  todo = _plan(m, cfg, jobs, seed, gt_dir, kernel_spec)
  write_manifest(out_dir, jobs, run_info, suffix, earlier)

  bar = None
  if progress and todo:
    from tqdm import tqdm
    bar = tqdm(total=sum(m.iterations(j.cfg) for j in todo), unit="it",
               desc=f"{len(todo)} images {method} x{cfg.scale}", file=sys.stderr,
               dynamic_ncols=True)

  def advance(n: int, losses: str) -> None:
    if bar is not None:
      status = [j.row["status"] for j in jobs]
      bar.update(n)
      bar.set_postfix_str(f"done {status.count('done')} failed {status.count('failed')}"
                          + (f" | {losses}" if losses else ""))

  def done(job: Job, record) -> None:
    write_manifest(out_dir, jobs, run_info, suffix, earlier)
    advance(0, "")
    if on_image_done is not None:
      on_image_done(job)

  ctx = job_lib.Context(batch=batch_size, progress=advance if bar is not None else None,
                        checkpoint_every=checkpoint_every, checkpoints=Checkpoints(out_dir),
                        all_jobs=todo, tile=tile,
                        info={"preset": preset, "ablations": list(ablations)})
  try:
    job_lib.run_jobs(m, todo, seed, ctx, on_done=done)
  finally:
    if bar is not None:
      bar.close()
  return jobs
