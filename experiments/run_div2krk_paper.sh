#!/usr/bin/env bash
# Issue 2's measurement: DIV2KRK images 2 and 3, x2, paper preset, full 3000 iterations,
# one after the other (each uses every core), then the defect analysis of each.
#   bash experiments/run_div2krk_paper.sh [OUT_DIR]
set -euo pipefail
D=${DATA:-../shared/data}/DIV2KRK
OUT=${1:-results/div2krk_x2_paper}
for i in 2 3; do
  if [ ! -f "$OUT/im_${i}_x2.json" ]; then
    python -m ikejax.main --image "$D/lr_x2/im_$i.png" --hr "$D/gt/im_$i.png" --scale 2 \
      --config paper --seed 0 --out "$OUT" --noprogress
  fi
  python experiments/defects.py --sr "$OUT/im_${i}_x2.png" --lr "$D/lr_x2/im_$i.png" \
    --hr "$D/gt/im_$i.png" --scale 2
done
