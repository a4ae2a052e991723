"""Finished folder-run results kept in a tracked folder, and the images still to run.

A long table (Set14 x4 at 300 iterations: about 3 h per degradation on 2 cores) can outlive
the scratch folder its runs write to. `keep` copies every finished image of a run folder
(its `<stem>_x<s>.json` record, `_kernel.npy` learned kernel and manifest row) into RECORDS,
whose `manifest.json` then holds the rows of every run kept there; `todo` fills a folder with
links to the LR images RECORDS does not hold yet, for the next `python -m ikejax.main`.
`experiments/tables.py` and `experiments/score_kernels.py` read RECORDS like a run folder.

  python experiments/records.py todo --lr DATA/lr --records RECORDS --out DATA/lr-todo
  python experiments/records.py keep --run RUN_DIR --records RECORDS

`todo` prints how many images are left. `keep` refuses a run whose preset, ablations, seed,
scale or iteration count differ from those already kept. SR images are not kept (they are
derived from the benchmark images, which this project does not commit).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil

from ikejax.imaging import image_io
from ikejax.runs import folder
from ikejax.runs.records import output_paths

SETTINGS = ("preset", "ablations", "seed", "scale", "iters")


def _read(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def kept(records: str) -> dict:
  """RECORDS' manifest ({"runs": [...], "images": [...]}); empty when there is none."""
  path = os.path.join(records, "manifest.json")
  return _read(path) if os.path.isfile(path) else {"runs": [], "images": []}


def todo(lr_dir: str, records: str, out: str) -> int:
  """Links in `out` (emptied first) to the images of `lr_dir` not finished in RECORDS."""
  done = {os.path.basename(r["image"]) for r in kept(records)["images"]
          if r["status"] in folder.FINISHED}
  os.makedirs(out, exist_ok=True)
  for old in os.listdir(out):
    os.remove(os.path.join(out, old))
  left = [p for p in folder.list_images(lr_dir) if os.path.basename(p) not in done]
  for p in left:
    os.symlink(os.path.abspath(p), os.path.join(out, os.path.basename(p)))
  return len(left)


def keep(run_dir: str, records: str) -> int:
  """Copies the finished images of `run_dir` into RECORDS; returns how many were new."""
  paths = sorted(glob.glob(os.path.join(run_dir, "manifest*.json")))
  if not paths:
    raise SystemExit(f"records: no manifest in {run_dir}")
  have = kept(records)
  manifests = [(p, _read(p)) for p in paths]
  settings = lambda run: {k: run.get(k) for k in SETTINGS}
  want = settings((have["runs"] or [manifests[0][1]["run"]])[0])
  for path, manifest in manifests:  # all checked before anything is copied
    if settings(manifest["run"]) != want:
      raise SystemExit(f"records: {path} has settings {settings(manifest['run'])}, "
                       f"{records} holds {want}")
  rows = {os.path.basename(r["image"]): r for r in have["images"]}
  new = 0
  os.makedirs(records, exist_ok=True)
  for _, manifest in manifests:
    finished = [r for r in manifest["images"] if r["status"] in folder.FINISHED]
    for row in finished:
      name = os.path.basename(row["image"])
      outputs = output_paths(run_dir, os.path.splitext(name)[0], manifest["run"]["scale"])
      for src in (outputs["record"], outputs["kernel_npy"]):
        if os.path.isfile(src):
          shutil.copyfile(src, os.path.join(records, os.path.basename(src)))
      new += rows.get(name, {}).get("status") not in folder.FINISHED
      rows[name] = dict(row, status="done")
    if finished and manifest["run"] not in have["runs"]:
      have["runs"].append(manifest["run"])
  have["images"] = [rows[n] for n in sorted(rows)]
  image_io.write_json_atomic(os.path.join(records, "manifest.json"), have)
  return new


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  sub = p.add_subparsers(dest="cmd", required=True)
  t = sub.add_parser("todo", help="links to the LR images RECORDS does not hold yet")
  t.add_argument("--lr", required=True)
  t.add_argument("--records", required=True)
  t.add_argument("--out", required=True)
  k = sub.add_parser("keep", help="copy a run folder's finished images into RECORDS")
  k.add_argument("--run", required=True)
  k.add_argument("--records", required=True)
  a = p.parse_args()
  if a.cmd == "todo":
    print(todo(a.lr, a.records, a.out))
  else:
    n = keep(a.run, a.records)
    print(f"{n} new finished image(s) kept in {a.records}")


if __name__ == "__main__":
  main()
