#!/usr/bin/env bash
# Run-to-run spread of one preset on one image: the same command with seeds 0..N-1, then
# the Y-PSNR/SSIM of each (what "same quality" can mean for a GAN trained on one image).
#   bash experiments/seed_spread.sh [PRESET] [IMAGE_NUMBER] [SEEDS] [ITERS]
# ITERS (optional) overrides the preset's iteration count, scaling its schedules.
set -euo pipefail
D=${DATA:-../shared/data}/DIV2KRK
PRESET=${1:-fast}
IM=${2:-2}
SEEDS=${3:-3}
ITERS=${4:-}
OUT=results/seed_spread/${PRESET}${ITERS:+_$ITERS}_im_${IM}
for ((seed = 0; seed < SEEDS; seed++)); do
  if [ ! -f "$OUT/seed_$seed/im_${IM}_x2.json" ]; then
    python -m ikejax.main --image "$D/lr_x2/im_$IM.png" --hr "$D/gt/im_$IM.png" --scale 2 \
      --config "$PRESET" ${ITERS:+--iters "$ITERS"} --seed "$seed" --out "$OUT/seed_$seed" --noprogress
  fi
done
python - "$OUT" "$SEEDS" "$IM" <<'PY'
import json, sys
import numpy as np
out, seeds, im = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = [json.load(open(f"{out}/seed_{s}/im_{im}_x2.json")) for s in range(seeds)]
psnr = np.array([r["scores"]["ikejax"]["psnr_y"] for r in rows])
ssim = np.array([r["scores"]["ikejax"]["ssim_y"] for r in rows])
print("| seed | Y-PSNR | SSIM | s per iteration |\n|---|---|---|---|")
for s, r in enumerate(rows):
  print(f"| {s} | {psnr[s]:.2f} | {ssim[s]:.4f} | {r['timings']['s_per_iter']:.3f} |")
print(f"| mean +- std | {psnr.mean():.2f} +- {psnr.std(ddof=1):.2f} | "
      f"{ssim.mean():.4f} +- {ssim.std(ddof=1):.4f} | |")
PY
