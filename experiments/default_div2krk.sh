#!/usr/bin/env bash
# The default recipe, blind (`--config default`: spectral kernel estimate -> IKE's decoder
# trained on its sons), on the DIV2KRK images one at a time, then the table beside the
# filters: bash experiments/default_div2krk.sh OUT [SCALE] [SEED]  (DATA: ../shared/data).
set -euo pipefail
out=${1:?usage: default_div2krk.sh OUT [SCALE] [SEED]}; s=${2:-2}; seed=${3:-0}
data=${DATA:-../shared/data}/DIV2KRK
for lr in "$data"/lr_x$s/im_*.png; do
  stem=$(basename "$lr" .png)
  [ -f "$out/${stem}_x$s.json" ] && continue
  python -m ikejax.main --config default --scale "$s" --seed "$seed" \
    --image "$lr" --hr "$data/gt/$stem.png" --out "$out" --noprogress
done
python experiments/filter_table.py --records "$out" --lr "$data/lr_x$s" --gt "$data/gt" --scale "$s"
