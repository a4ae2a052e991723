#!/usr/bin/env bash
# The project page's ablation at x2: the full model, then each design removed in turn
# (energy loss, tri-channel coupling -> two-way additive, bicubic residual, L_CSR^bwd, L_inter),
# on DIV2KRK images, one seed. Resumable: rerun the same command to finish a killed run.
#   bash experiments/ablation.sh [OUT] [PRESET] [IMAGES_GLOB] [BATCH] [SEED]
# Writes OUT/ablation.md and .csv (per image and mean, every variant beside the full model).
set -euo pipefail
D=${DATA:-../shared/data}/DIV2KRK
OUT=${1:-results/ablation}
PRESET=${2:-paper}
GLOB=${3:-$D/lr_x2/im_*.png}
BATCH=${4:-2}
SEED=${5:-0}
runs=()
for variant in full no_energy two_way no_residual no_csr_bwd no_inter; do
  ablate=""
  [ "$variant" = full ] || ablate="--ablate=$variant"
  python -m ikejax.main --images "$GLOB" --gt "$D/gt" --scale 2 --config "$PRESET" $ablate \
    --seed "$SEED" --batch "$BATCH" --checkpoint_every 200 --out "$OUT/$variant" || true
  runs+=(--run "$variant=$OUT/$variant")
done
python experiments/tables.py "${runs[@]}" \
  --title "Ablation x2, $PRESET preset, seed $SEED" --out "$OUT/ablation"
