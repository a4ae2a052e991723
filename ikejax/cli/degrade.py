"""`ikejax-degrade --hr HR.png|HR_DIR --scale 2|3|4 --kind K --seed N --out DIR [--grid G]`:
evaluation sets made from HR images (`ikejax.imaging.degrade`, whose docstring lists the kinds).

Writes `lr/`, `hr/`, `params/` and, for kernel kinds, `kernels/` under `--out`; then
`ikejax -i OUT/lr --gt OUT/hr -o RUN` scores a method on them.
"""

from __future__ import annotations

import os
from typing import Sequence

from absl import flags

from ikejax.cli.common import fail, run_program
from ikejax.imaging import degrade, image_io
from ikejax.runs.folder import list_images


def _define_flags() -> None:
  flags.DEFINE_string("hr", None, "HR image, or a folder of HR images.")
  flags.DEFINE_integer("scale", 2, "subsampling factor: 2, 3 or 4.")
  flags.DEFINE_enum("kind", None, list(degrade.KINDS), "degradation.")
  flags.DEFINE_integer("seed", 0, "seed of the first image; image i of a folder uses seed + i.")
  flags.DEFINE_string("out", None, "output folder (lr/, hr/, params/, kernels/).")
  flags.DEFINE_enum("grid", "corner", list(degrade.GRIDS),
                    "where median, bilateral and diffusion subsample: corner = [::s], centre "
                    "= HR position s*i + (s-1)/2, bilinear (cv2 INTER_LINEAR).")
  flags.mark_flags_as_required(["hr", "kind", "out"])


def main(argv: Sequence[str]) -> int:
  """Degrades `--hr` (a file or every image of a folder) into `--out`."""
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])}")
  fl = flags.FLAGS
  try:
    paths = list_images(fl.hr) if os.path.isdir(fl.hr) else [fl.hr]
    for i, path in enumerate(paths):
      stem = os.path.splitext(os.path.basename(path))[0]
      result = degrade.degrade(image_io.read_image(path).pixels, fl.scale, fl.kind,
                               fl.seed + i, fl.grid)
      result.params["hr_file"] = path
      written = degrade.write(result, fl.out, stem, protect=paths)
      print(f"wrote {written['lr']} {result.lr.shape[1]}x{result.lr.shape[0]}")
  except (ValueError, OSError) as e:  # ImageError and FolderError are ValueErrors.
    fail(str(e))
  return 0


def run() -> None:
  """Entry point of `ikejax-degrade` and `python -m ikejax.cli.degrade`."""
  run_program(_define_flags, main, __doc__)


if __name__ == "__main__":
  run()
