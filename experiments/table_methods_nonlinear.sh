#!/usr/bin/env bash
# Method comparison on the paper's nonlinear degradations: bicubic vs KernelGAN + ISSR-DIL vs
# ISSR-DIL (and IKE where `experiments/table_nonlinear.sh` ran into the same OUT), with time per
# image. The degraded sets are the ones table_nonlinear.sh makes (same layout, same SEED: image
# i of a set uses SEED + i), so both scripts can share OUT. Resumable: rerun to finish.
#   bash experiments/table_methods_nonlinear.sh [OUT] [SETS] [SCALES] [KINDS] [SEED]
# docs/notebook.md "Kernels and other methods" was made with SETS=Set5 SCALES=2 (KernelGAN's ~2.5 min per
# image makes all 152 jobs of both sets and scales ~6 hours on 2 cores).
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${1:-results/table_nonlinear}
SETS=${2:-Set5 Set14}
SCALES=${3:-2 4}
KINDS=${4:-median bilateral diffusion random}
SEED=${5:-0}
for s in $SCALES; do
  for kind in $KINDS; do
    declare -A dirs=()
    for set in $SETS; do
      deg="$OUT/data/$set-$kind-x$s"
      [ -d "$deg/lr" ] || ikejax-degrade --hr "$DATA/$set" --scale "$s" --kind "$kind" \
        --seed "$SEED" --out "$deg" > /dev/null
      for m in kernelgan issr-dil; do
        python -m ikejax.main --method "$m" --images "$deg/lr" --gt "$deg/hr" --scale "$s" \
          --seed 0 --noprogress --out "$OUT/$m/$set-$kind-x$s" || true  # failures: in the manifest
        dirs[$m]="${dirs[$m]:-}${dirs[$m]:+,}$OUT/$m/$set-$kind-x$s"
      done
      if [ -f "$OUT/runs/$set-$kind-x$s/manifest.json" ]; then  # table_nonlinear.sh's IKE run
        dirs[ike]="${dirs[ike]:-}${dirs[ike]:+,}$OUT/runs/$set-$kind-x$s"
      fi
    done
    runs=()
    [ -n "${dirs[ike]:-}" ] && runs+=(--run "ike=${dirs[ike]}")
    runs+=(--run "kernelgan+issr-dil=${dirs[kernelgan]}" --run "issr-dil=${dirs[issr-dil]}")
    python experiments/tables.py "${runs[@]}" --title "${SETS// /+} $kind x$s, seed $SEED" \
      --out "$OUT/methods-$kind-x$s"
    unset dirs
  done
done
