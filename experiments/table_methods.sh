#!/usr/bin/env bash
# Method comparison on the DIV2KRK images of ../shared/data at x2 and x4: bicubic vs ikejax IKE
# (PRESET at ITERS iterations) vs KernelGAN + ISSR-DIL vs ISSR-DIL, with time per image, plus
# the kernels scored against the ground truth. Resumable: rerun the same command to finish.
#   bash experiments/table_methods.sh [OUT] [ITERS] [PRESET] [BATCH] [SCALES]
# README "Kernels and other methods" was made with ITERS=600 PRESET=paper SCALES="2 4" (IKE at
# x2 only: SCALES="2" for IKE's 2.5 s x4 iterations is the slow part).
set -euo pipefail
D=${DATA:-../shared/data}/DIV2KRK
OUT=${1:-results/table_methods}
ITERS=${2:-3000}
PRESET=${3:-paper}
BATCH=${4:-2}
SCALES=${5:-2 4}
for s in $SCALES; do
  python -m ikejax.main --images "$D/lr_x$s" --gt "$D/gt" --scale "$s" --config "$PRESET" \
    --iters "$ITERS" --seed 0 --batch "$BATCH" --checkpoint_every 200 --out "$OUT/ike-x$s" || true
  for m in kernelgan issr-dil; do
    python -m ikejax.main --method "$m" --images "$D/lr_x$s" --gt "$D/gt" --scale "$s" --seed 0 \
      --out "$OUT/$m-x$s" || true   # failed images are listed in the manifest
  done
  python experiments/tables.py --run "ike=$OUT/ike-x$s" --run "kernelgan+issr-dil=$OUT/kernelgan-x$s" \
    --run "issr-dil=$OUT/issr-dil-x$s" --title "DIV2KRK x$s, IKE $PRESET $ITERS iterations, seed 0" \
    --out "$OUT/methods_x$s"
  python experiments/score_kernels.py --run "ike=$OUT/ike-x$s" --run "kernelgan=$OUT/kernelgan-x$s" \
    --run "issr-dil=$OUT/issr-dil-x$s" --scale "$s" --data "$D" --out "$OUT/kernels_x$s"
done
