#!/usr/bin/env bash
# IKE's decoder with the true DIV2KRK kernels (`--config default --kernel`), one image at a
# time, then the table: bash experiments/kernel_div2krk.sh OUT [SCALE] [SEED]
# (DATA defaults to ../shared/data). Records: OUT/im_<n>_x<s>.json.
set -euo pipefail
out=${1:?usage: kernel_div2krk.sh OUT [SCALE] [SEED]}; s=${2:-2}; seed=${3:-0}
data=${DATA:-../shared/data}/DIV2KRK
for lr in "$data"/lr_x$s/im_*.png; do
  stem=$(basename "$lr" .png)
  [ -f "$out/${stem}_x$s.json" ] && continue
  python -m ikejax.main --config default --scale "$s" --seed "$seed" --kernel "$data/gt_k_x$s" \
    --image "$lr" --hr "$data/gt/$stem.png" --out "$out" --noprogress
done
python experiments/filter_table.py --records "$out" --lr "$data/lr_x$s" --gt "$data/gt" --scale "$s"
