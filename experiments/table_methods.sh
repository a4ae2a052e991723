#!/usr/bin/env bash
# Method comparison on the DIV2KRK images of ../shared/data at x2 and x4: bicubic vs ikejax IKE
# (PRESET at ITERS iterations) vs IKE's kernel + ISSR-DIL vs KernelGAN + ISSR-DIL vs ISSR-DIL
# (and ISSR-DIL on the true kernel, not blind), with time per image, plus
# the kernels scored against the ground truth. Resumable: rerun the same command to finish.
#   bash experiments/table_methods.sh [OUT] [ITERS] [PRESET] [BATCH] [SCALES]
# docs/notebook.md "Kernels and other methods" was made with ITERS=600 PRESET=paper at x2 and, for IKE's
# 2.5 s x4 iterations, ITERS=300 at x4 (the other methods do not depend on ITERS).
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
  # ISSR-DIL's L-CNN on IKE's kernels, and on the true kernels (not blind: the bound).
  python -m ikejax.main --method issr-dil --kernel "$OUT/ike-x$s" --images "$D/lr_x$s" --gt "$D/gt" \
    --scale "$s" --seed 0 --out "$OUT/ike-kernel-dil-x$s" || true
  python -m ikejax.main --method issr-dil --kernel "$D/gt_k_x$s" --images "$D/lr_x$s" --gt "$D/gt" \
    --scale "$s" --seed 0 --out "$OUT/true-kernel-dil-x$s" || true
  python experiments/tables.py --run "ike=$OUT/ike-x$s" --run "ike-kernel+issr-dil=$OUT/ike-kernel-dil-x$s" \
    --run "kernelgan+issr-dil=$OUT/kernelgan-x$s" --run "issr-dil=$OUT/issr-dil-x$s" \
    --run "true-kernel+issr-dil=$OUT/true-kernel-dil-x$s" \
    --title "DIV2KRK x$s, IKE $PRESET $ITERS iterations, seed 0" --out "$OUT/methods_x$s"
  python experiments/score_kernels.py --run "ike=$OUT/ike-x$s" --run "kernelgan=$OUT/kernelgan-x$s" \
    --run "issr-dil=$OUT/issr-dil-x$s" --scale "$s" --data "$D" --out "$OUT/kernels_x$s"
done
