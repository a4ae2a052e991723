"""The methods beside IKE: `--method kernelgan`, `issr-dil`, and the filters `bicubic`, `sharpen`.

  * `bicubic`, `sharpen`: the zero-parameter reference rows (`ikejax.filters`);
    seconds per image, the same outputs and records as the learned methods.

  * `kernelgan`: KernelGAN estimates the x2 kernel (x4: its analytic kernel),
    then ISSR-DIL's L-CNN, trained on that kernel (re-centred), inverts it
    after bicubic upsampling: "KernelGAN + ISSR-DIL" of ISSR-DIL's Table 3.
    The non-blind step is ISSR-DIL's because it is the one non-blind upscaler
    in the tool and is kernel-driven as KernelGAN's ZSSR is (ZSSR would add a
    second network trained per image; not implemented).
  * `issr-dil`: kernels from the image's statistics, the same L-CNN and SR;
    or, with `--kernel`, the L-CNN trained on a given kernel: any other
    method's estimate (an ikejax run folder, so "IKE kernel + ISSR-DIL" is
    two commands) or the ground truth (the non-blind bound of the L-CNN).

Both write the files of an IKE run (`results.output_paths`: SR, comparison
picture, loss curves, the estimated kernel as .npy/.mat/.png, the record;
no X_LLR) and, for folders, the same resumable manifest, so `experiments/
tables.py` and `experiments/score_kernels.py` read them unchanged. Folder runs
go one image at a time (seconds to a minute each on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from typing import Optional

import jax
import numpy as np

from ikejax import dil, filters, folder, image_io, kernel, kernelgan, results, train

METHODS = ("ike", "kernelgan", "issr-dil", "bicubic", "sharpen")
LOSS_KEYS = {"kernelgan": ("g_gan", "bicubic", "sum2one", "boundaries", "centralized",
                           "sparse", "d"),
             "issr-dil": ("identity", "pinv", "unity", "rs")}


@dataclasses.dataclass(frozen=True)
class MethodConfig:
  """A kernel-first method's settings: KernelGAN's (or None), the L-CNN's, and
  `kernel_from`: a kernel file or folder (`find_kernel`) the L-CNN inverts
  instead of the statistics' kernels (issr-dil only; None: statistics)."""
  method: str
  scale: int
  kernelgan: Optional[kernelgan.KernelGANConfig]
  dil: Optional[dil.DILConfig]      # None for the zero-parameter filters
  kernel_from: Optional[str] = None

  def asdict(self) -> dict:
    d = {"method": self.method, "scale": self.scale,
         "kernelgan": dataclasses.asdict(self.kernelgan) if self.kernelgan else None,
         "dil": dataclasses.asdict(self.dil) if self.dil else None}
    if self.kernel_from is not None:  # only when set: records without it stay resumable
      d["kernel_from"] = self.kernel_from
    return d


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
    ValueError: one line, for a missing or unreadable file or a kernel without
      positive taps (the L-CNN inverts a blur: negative taps are clipped).
  """
  path = find_kernel(spec, image_path, scale)
  k = image_io.load_kernel(path)  # ImageError is a ValueError
  if not np.any(k > 0):
    raise ValueError(f"kernel {path} has no positive taps; ISSR-DIL inverts a blur")
  return k, path


def get_config(method: str, preset: str, scale: int, iters: Optional[int] = None,
               kernel_from: Optional[str] = None) -> MethodConfig:
  """Raises ValueError (one line) for an unknown preset, scale or flag combination."""
  if kernel_from is not None:
    if method != "issr-dil":
      raise ValueError("--kernel applies to --method ike or issr-dil (they train on the "
                       "given kernel)")
    if not os.path.exists(kernel_from):
      raise ValueError(f"--kernel {kernel_from}: no such file or folder")
  if method in filters.FILTERS:
    if iters is not None:
      raise ValueError(f"--iters: {method} is a filter with nothing to train")
    if scale not in (2, 3, 4):
      raise ValueError(f"unsupported scale {scale}; expected 2, 3 or 4")
    return MethodConfig(method, scale, None, None)
  if method == "kernelgan":
    if scale not in (2, 4):
      raise ValueError(f"kernelgan estimates x2 kernels (x4 analytically); got --scale {scale}")
    if preset not in kernelgan.PRESETS:
      raise ValueError(f"unknown kernelgan config {preset!r}; expected one of "
                       f"{sorted(kernelgan.PRESETS)}")
    kcfg = kernelgan.PRESETS[preset]
    if iters is not None:
      kcfg = kcfg.replace(iters=iters)
    dcfg = dil.PRESETS["tiny" if preset == "tiny" else "paper"]
    return MethodConfig(method, scale, kcfg.validate(), dcfg)
  if method == "issr-dil":
    if iters is not None:
      raise ValueError("--iters sets IKE's or KernelGAN's iterations; issr-dil trains "
                       "a fixed number of epochs on kernels")
    if preset not in dil.PRESETS:
      raise ValueError(f"unknown issr-dil config {preset!r}; expected one of {sorted(dil.PRESETS)}")
    if scale < 2:
      raise ValueError(f"scale must be >= 2, got {scale}")
    return MethodConfig(method, scale, None, dil.PRESETS[preset],
                        kernel_from=os.path.abspath(kernel_from) if kernel_from else None)
  raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def _dil_on_kernel(key: jax.Array, cfg: dil.DILConfig, k: np.ndarray) -> dil.DILResult:
  """The L-CNN trained to invert one estimated kernel (re-centred), repeated to fill its batch."""
  return dil.fit(key, cfg, kernels=np.repeat(dil.centre_kernel(k)[None], cfg.n_kernels, 0))


def run_job(mcfg: MethodConfig, loaded: image_io.LoadedImage, seed: int,
            outputs: dict[str, str], *, protect, hr: Optional[np.ndarray], info: dict,
            progress: bool = False, kernel_file: Optional[tuple[np.ndarray, str]] = None) -> dict:
  """Trains the method on one image and writes every output; returns the record.

  `kernel_file`: `given_kernel`'s `(kernel, path)` when `mcfg.kernel_from` is set.
  """
  t_start = time.perf_counter()
  x = image_io.to_model_range(loaded.pixels, loaded.bit_depth)
  lr01 = (np.asarray(x, np.float64) + 1.0) / 2.0
  k_kg, k_dil = jax.random.split(jax.random.key(seed))
  timings, history, k_info = {}, [], {}
  if mcfg.method in filters.FILTERS:
    sr01 = filters.FILTERS[mcfg.method](lr01, mcfg.scale)
    timings["inference_s"] = time.perf_counter() - t_start
    return results.write_result(
        outputs, loaded=loaded, x=x, scale=mcfg.scale, sr=2.0 * sr01 - 1.0, llr=None,
        est_kernel=filters.bicubic_kernel(mcfg.scale, kernel.DEFAULT_SIZE[mcfg.scale]),
        kernel_info={"source": "assumed: MATLAB bicubic downscale (nothing is estimated)"},
        protect=protect, hr=hr, history=[], loss_keys=(), timings=timings,
        info={**info, "method": mcfg.method, "seed": seed, "config": mcfg.asdict()},
        t_start=t_start, label=mcfg.method)
  if mcfg.kernelgan is not None:
    bar = None
    if progress:
      from tqdm import tqdm
      bar = tqdm(total=mcfg.kernelgan.iters, desc="KernelGAN", unit="it", file=sys.stderr,
                 dynamic_ncols=True)

    def on_log(done, m):
      if bar is not None:
        bar.update(done - bar.n)
        bar.set_postfix_str(f"gan {m['g_gan']:.3f} bic {m['bicubic']:.4f} "
                            f"sum {m['sum2one']:.3f} D {m['d']:.3f}")
    try:
      res = kernelgan.fit(lr01, mcfg.kernelgan, k_kg, on_log=on_log)
    finally:
      if bar is not None:
        bar.close()
    est = kernelgan.final_kernels(res.kernel_x2, mcfg.scale, mcfg.kernelgan.n_filtering)
    history = res.history
    timings.update(kernelgan_compile_s=res.compile_seconds, kernelgan_train_s=res.train_seconds,
                   s_per_iter=res.train_seconds / mcfg.kernelgan.iters)
    d = _dil_on_kernel(k_dil, mcfg.dil, est)
    k_info = {"source": "KernelGAN (x4: analytic kernel of the x2 estimate)",
              "raw_x2": res.kernel_x2.tolist()}
  elif mcfg.kernel_from is not None:
    given, path = kernel_file
    d = _dil_on_kernel(k_dil, mcfg.dil, given)
    est = given  # written back as given, for the record and the kernel scores
    # IKE's kernels have negative taps; centre_kernel clips them: record how much.
    clipped = kernel.shape(given)["negative_mass"]
    k_info = {"source": f"given: {path}", "negative_mass_clipped": clipped}
  else:
    d = dil.fit(k_dil, mcfg.dil, lr01=lr01)
    est = dil.stats_kernel(lr01, mcfg.scale, mcfg.dil)
    k_info = {"source": "image statistics (Eq. 5) at the centre of the delta range",
              "sigma_o": dil.image_sigma(lr01)}
  k_info.update(drk=d.drk.tolist(), pinv_terms_used=d.pinv_used)
  timings["dil_train_s"] = d.train_seconds
  # DIL epochs continue the iteration count after KernelGAN's, on the same curves picture.
  offset = history[-1]["iteration"] if history else 0
  history = history + [{**h, "iteration": h["iteration"] + offset} for h in d.history]
  t0 = time.perf_counter()
  sr01 = dil.super_resolve(d, lr01, mcfg.scale, mcfg.dil)
  timings["inference_s"] = time.perf_counter() - t0
  keys = LOSS_KEYS[mcfg.method] + (LOSS_KEYS["issr-dil"] if mcfg.kernelgan else ())
  return results.write_result(
      outputs, loaded=loaded, x=x, scale=mcfg.scale, sr=2.0 * sr01 - 1.0, llr=None,
      est_kernel=est, kernel_info=k_info, protect=protect, hr=hr, history=history,
      loss_keys=keys, timings=timings,
      info={**info, "method": mcfg.method, "seed": seed, "config": mcfg.asdict()},
      t_start=t_start, label=mcfg.method)


def run_single(mcfg: MethodConfig, image_path: Optional[str], out_dir: str, seed: int,
               hr_path: Optional[str], progress: bool) -> dict:
  """`--image` (or the embedded default image) with a kernel-first method."""
  loaded, hr, stem = results.read_inputs(image_path, hr_path, mcfg.scale)
  if hr is not None:
    results.check_hr(hr, loaded, mcfg.scale, f"--hr {hr_path}")
  outputs = results.output_paths(out_dir, stem, mcfg.scale)
  kfile = given_kernel(mcfg.kernel_from, image_path, mcfg.scale) if mcfg.kernel_from else None
  protect = [p for p in (image_path, hr_path, kfile and kfile[1]) if p]
  clash = results.overwritten_input(outputs, protect)
  if clash:
    raise ValueError(f"output {clash} would overwrite an input file; choose another --out")
  os.makedirs(out_dir, exist_ok=True)
  verb = "running" if mcfg.method in filters.FILTERS else "training"
  print(f"{verb} {mcfg.method} x{mcfg.scale} on {stem}", file=sys.stderr)
  return run_job(mcfg, loaded, seed, outputs, protect=protect, hr=hr,
                 info={"image": image_path or "embedded default (skimage astronaut, degraded)",
                       "input": image_io.file_fingerprint(image_path) if image_path else None},
                 progress=progress, kernel_file=kfile)


def run_folder(spec: str, out_dir: str, mcfg: MethodConfig, seed: int, gt_dir: Optional[str],
               progress: bool) -> list[folder.Job]:
  """Folder run of a kernel-first method: one image at a time, resumable, with a manifest.

  Raises:
    folder.FolderError: no images, a bad --gt, or an output that would overwrite an input.
  """
  if gt_dir is not None and not os.path.isdir(gt_dir):
    raise folder.FolderError(f"--gt {gt_dir} is not a folder")
  paths, skipped = folder.list_inputs(spec)
  folder.prepare_out_dir(out_dir)
  earlier = folder._earlier_rows(out_dir, "")
  run_info = {"images": spec, "out": out_dir, "method": mcfg.method, "seed": seed,
              "scale": mcfg.scale, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "skipped": skipped}
  jobs = folder.new_jobs(paths, out_dir, mcfg.scale, gt_dir)
  folder.write_manifest(out_dir, jobs, run_info, earlier=earlier)
  want = json.loads(json.dumps(mcfg.asdict()))  # as a record stores it (tuples -> lists)
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), unit="image", desc=f"{mcfg.method} x{mcfg.scale}",
               file=sys.stderr, dynamic_ncols=True)
  try:
    for job in jobs:
      if job.row["status"] == "failed":
        continue
      record = results.is_finished(job.outputs)
      why = None
      if record is not None:
        try:
          source = image_io.file_fingerprint(job.path)
        except OSError as e:
          folder._fail(job, f"cannot read {job.path}: {e.strerror}")
          continue
        same = record.get("config") == want and record.get("seed") == seed
        why = folder.why_not_reused(record, same, source)
        if why is None:
          job.row = folder._row_from_record(job.path, record, "done earlier")
      if record is None or why is not None:
        t0 = time.perf_counter()
        try:
          kfile = (given_kernel(mcfg.kernel_from, job.path, mcfg.scale)
                   if mcfg.kernel_from else None)
          protect = [job.path] + ([job.gt] if job.gt else []) + ([kfile[1]] if kfile else [])
          clash = results.overwritten_input(job.outputs, protect)
          if clash:
            raise ValueError(f"output {clash} would overwrite the input {kfile[1]}; "
                             "choose another --out")
          loaded = image_io.read_image(job.path)
          hr = None
          if job.gt is not None:
            hr = image_io.read_image(job.gt).pixels
            results.check_hr(hr, loaded, mcfg.scale, f"ground truth {job.gt}")
          record = run_job(mcfg, loaded, seed, job.outputs, protect=protect, hr=hr,
                           info={"image": job.path,
                                 "input": image_io.file_fingerprint(job.path)},
                           kernel_file=kfile)
          job.row = folder._row_from_record(job.path, record, "done")
          notes = [f"redone: {why}"] if why else []
          if gt_dir is not None and job.gt is None:
            stem = os.path.splitext(os.path.basename(job.path))[0]
            notes.append(f"no ground truth named {stem}.* in {gt_dir}")
          if notes:
            job.row["error"] = "; ".join(notes)
        except (ValueError, OSError, train.NonFiniteLossError) as e:  # ImageError: a ValueError
          folder._fail(job, str(e).splitlines()[0] if str(e) else type(e).__name__,
                       seconds=time.perf_counter() - t0)
      folder.write_manifest(out_dir, jobs, run_info, earlier=earlier)
      if bar is not None:
        bar.update(1)
  finally:
    if bar is not None:
      bar.close()
  return jobs
