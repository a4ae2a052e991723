#!/usr/bin/env bash
# The default recipe (`--config default`) on the DIV2KRK images, one at a time, then the table
# beside the filters:  bash experiments/default_div2krk.sh OUT [SCALE] [SEED]
# Blind (the kernel estimated from the LR). TRUE_KERNEL=1 makes the sons with DIV2KRK's true
# kernels instead (`--kernel`, the non-blind bound). DATA: ../shared/data.
set -euo pipefail
out=${1:?usage: default_div2krk.sh OUT [SCALE] [SEED]}; s=${2:-2}; seed=${3:-0}
data=${DATA:-../shared/data}/DIV2KRK
kernel=()
[ "${TRUE_KERNEL:-0}" = 1 ] && kernel=(--kernel "$data/gt_k_x$s")
for lr in "$data"/lr_x$s/im_*.png; do
  stem=$(basename "$lr" .png)
  [ -f "$out/${stem}_x$s.json" ] && continue
  python -m ikejax.main --config default --scale "$s" --seed "$seed" "${kernel[@]}" \
    --image "$lr" --hr "$data/gt/$stem.png" --out "$out" --noprogress
done
python experiments/filter_table.py --records "$out" --lr "$data/lr_x$s" --gt "$data/gt" --scale "$s"
