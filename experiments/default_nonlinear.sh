#!/usr/bin/env bash
# The default recipe (`--config default`) on the paper's nonlinear sets (median, bilateral,
# diffusion, random kernels of Set5 / Set14, `ikejax-degrade`; any other kind of it, e.g.
# `bicubic`, too), one image at a time, then each set's table beside the filters:
#   bash experiments/default_nonlinear.sh OUT [SEED] [SETS] [KINDS] [SCALE] [-- EXTRA FLAGS]
# OUT/data/<set>-<kind>-x<s> holds the degraded set (ikejax-degrade seed 0, whatever SEED
# trains with), OUT/<set>-<kind>-x<s> the run. GRID=centre subsamples on the centre grid
# (ikejax-degrade --grid; dirs get a -centre suffix). Resumable: finished images are skipped.
# DATA: ../shared/data.
set -euo pipefail
pos=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pos+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift  # what is left goes to every run
out=${pos[0]:?usage: default_nonlinear.sh OUT [SEED] [SETS] [KINDS] [SCALE] [-- FLAGS]}
seed=${pos[1]:-0}; sets=${pos[2]:-Set5 Set14}; kinds=${pos[3]:-median bilateral diffusion random}
s=${pos[4]:-2}
data=${DATA:-../shared/data}; grid=${GRID:-corner}; tag=""
[ "$grid" = corner ] || tag="-$grid"
for set in $sets; do
  for kind in $kinds; do
    deg="$out/data/$set-$kind-x$s$tag" run="$out/$set-$kind-x$s$tag"
    [ -d "$deg/lr" ] || ikejax-degrade --hr "$data/$set" --scale "$s" --kind "$kind" \
      --seed 0 --grid "$grid" --out "$deg" > /dev/null
    for lr in "$deg"/lr/*.png; do
      stem=$(basename "$lr" .png)
      [ -f "$run/${stem}_x$s.json" ] && continue
      python -m ikejax.main --config default --scale "$s" --seed "$seed" --image "$lr" \
        --hr "$deg/hr/$stem.png" --out "$run" --noprogress "$@" || true  # failures: one line
    done
    python experiments/filter_table.py --records "$run" --lr "$deg/lr" --gt "$deg/hr" \
      --scale "$s" --better
  done
done
