#!/usr/bin/env bash
# Any method on the 8 DIV2KRK images, one at a time (resumable), then the table beside the
# filters:  bash experiments/div2krk.sh OUT SCALE SEED [IKEJAX ARGS...]
# e.g. ZSSR on the true kernels (the non-blind bound):
#   bash experiments/div2krk.sh OUT 2 0 --method zssr --kernel ../shared/data/DIV2KRK/gt_k_x2
# KernelGAN + ZSSR:  bash experiments/div2krk.sh OUT 2 0 --method kernelgan+zssr
# DATA: ../shared/data.
set -euo pipefail
out=${1:?usage: div2krk.sh OUT SCALE SEED [ARGS...]}; s=${2:-2}; seed=${3:-0}
shift 3 || shift $#
data=${DATA:-../shared/data}/DIV2KRK
for lr in "$data"/lr_x$s/im_*.png; do
  stem=$(basename "$lr" .png)
  [ -f "$out/${stem}_x$s.json" ] && continue
  python -m ikejax.main --scale "$s" --seed "$seed" "$@" \
    --image "$lr" --hr "$data/gt/$stem.png" --out "$out" --noprogress
done
python experiments/filter_table.py --records "$out" --lr "$data/lr_x$s" --gt "$data/gt" --scale "$s"
