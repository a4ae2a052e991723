#!/usr/bin/env bash
# Table-3 style: the paper's four nonlinear degradations (median, bilateral, Perona-Malik
# diffusion, random kernels) of Set5 and Set14 at x2 and x4, bicubic vs ikejax `paper`.
# Resumable: rerun the same command to finish a killed run.
#   bash experiments/table_nonlinear.sh [OUT] [ITERS] [BATCH] [SEED] [SETS] [SCALES] [KINDS]
# The degraded sets are regenerated identically from SEED (image i of a set uses SEED + i).
# SETS, SCALES, KINDS (space-separated) pick a part of the table, e.g. "Set5" "2" "bilateral
# random"; `taps` (i.i.d. random taps, not in the default list) runs the same way. docs/notebook.md
# "Kernels and other methods" says which parts were run.
# RECORDS=DIR (optional) keeps each finished image's record in DIR/<set>-<kind>-x<s>
# (experiments/records.py) and runs only the images not kept there, so a table can be finished
# across working copies whose OUT is lost; the table is then made from DIR.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${1:-results/table_nonlinear}
ITERS=${2:-3000}
BATCH=${3:-2}
SEED=${4:-0}
RECORDS=${RECORDS:-}
SETS=${5:-Set5 Set14}
SCALES=${6:-2 4}
KINDS=${7:-median bilateral diffusion random}
for s in $SCALES; do
  for kind in $KINDS; do
    dirs=""
    for set in $SETS; do
      deg="$OUT/data/$set-$kind-x$s"
      [ -d "$deg/lr" ] || ikejax-degrade --hr "$DATA/$set" --scale "$s" --kind "$kind" \
        --seed "$SEED" --out "$deg" > /dev/null
      run="$OUT/runs/$set-$kind-x$s" lr="$deg/lr" left=1
      if [ -n "$RECORDS" ]; then
        lr="$deg/lr-todo"
        left=$(python experiments/records.py todo --lr "$deg/lr" --records "$RECORDS/$set-$kind-x$s" \
          --out "$lr")
      fi
      [ "$left" = 0 ] || python -m ikejax.main --images "$lr" --gt "$deg/hr" --scale "$s" \
        --config paper --iters "$ITERS" --seed 0 --batch "$BATCH" --checkpoint_every 100 \
        --out "$run" || true   # failed images are listed in the manifest
      if [ -n "$RECORDS" ]; then
        [ "$left" = 0 ] || python experiments/records.py keep --run "$run" --records "$RECORDS/$set-$kind-x$s"
        run="$RECORDS/$set-$kind-x$s"
      fi
      dirs="$dirs${dirs:+,}$run"
    done
    python experiments/tables.py --run "paper=$dirs" \
      --title "${SETS// /+} $kind x$s, paper preset, $ITERS iterations, seed 0" --out "$OUT/$kind-x$s"
  done
done
