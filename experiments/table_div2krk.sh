#!/usr/bin/env bash
# Table-2 style: the DIV2KRK images of ../shared/data at x2 and x4, bicubic vs ikejax `paper`
# vs ikejax `reference`, one seed. Resumable: rerun the same command to finish a killed run.
#   bash experiments/table_div2krk.sh [OUT] [ITERS] [BATCH] [SCALES] [PRESETS]
# ITERS defaults to the presets' 3000 (about 30 min per image at x2 on 2 cores; see
# docs/benchmarks.md); a smaller value scales every schedule and says so in the table title.
set -euo pipefail
D=${DATA:-../shared/data}/DIV2KRK
OUT=${1:-results/table_div2krk}
ITERS=${2:-3000}
BATCH=${3:-2}
# SCALES, PRESETS (space-separated) pick a part of the table, e.g. "2" "reference".
SCALES=${4:-2 4}
PRESETS=${5:-paper reference}
for s in $SCALES; do
  runs=()
  for preset in $PRESETS; do
    python -m ikejax.main --images "$D/lr_x$s" --gt "$D/gt" --scale "$s" --config "$preset" \
      --iters "$ITERS" --seed 0 --batch "$BATCH" --checkpoint_every 100 \
      --out "$OUT/x$s-$preset" || true   # failed images are listed in the manifest
    runs+=(--run "$preset=$OUT/x$s-$preset")
  done
  python experiments/tables.py "${runs[@]}" \
    --title "DIV2KRK x$s, $ITERS iterations, seed 0" --out "$OUT/div2krk_x$s"
done
