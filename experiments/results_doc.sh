#!/usr/bin/env bash
# Rebuilds docs/results.md from the kept records of experiments/kept/default/ (one table per
# folder DIV2KRK-x<s>-seed<k>-<iters>it[-nowarmup|-val], beside bicubic and `sharpen`;
# `-nowarmup`: the preset before its lr warm-up; no suffix: with the warm-up, before the
# internal validation; `-val`: the current preset; `-officialmap`: it with the official
# crop-centre maps, `--set crop_map=official`), then the seed spread of each x2 and x4 variant:
# Then one table per folder of experiments/kept/default/sets/ (degraded Set5 / Set14, see
# below) and one per folder of experiments/kept/methods/ (other methods, made with
# `bash experiments/div2krk.sh OUT SCALE SEED --method ...`; the command is in the folder's
# COMMAND file).
#   bash experiments/results_doc.sh      (DATA: ../shared/data)
set -euo pipefail
data=${DATA:-../shared/data}/DIV2KRK
doc=docs/results.md
cat > "$doc" <<'HEAD'
# Results of the default recipe

Made by `bash experiments/results_doc.sh` from the kept records in
`experiments/kept/default/` (one folder per table), which the runs wrote with
`bash experiments/default_div2krk.sh OUT SCALE SEED` (`python -m ikejax.main --config default`
on each of the 8 DIV2KRK images of ../shared/data, one at a time). Blind: the kernel is
estimated from the LR alone. Beside each run, the two zero-parameter filters of
`ikejax/imaging/filters.py`. The recipe and what led to it: docs/recipe_log.md; its departures from
the paper: docs/deviations.md. Seconds are whole runs, measured while other jobs shared the
two cores (upper bounds).

HEAD
for dir in experiments/kept/default/DIV2KRK-x*; do
  name=$(basename "$dir")                       # DIV2KRK-x2-seed0-1600it
  s=$(echo "$name" | sed -E 's/.*-x([0-9])-.*/\1/')
  python experiments/filter_table.py --records "$dir" --lr "$data/lr_x$s" --gt "$data/gt" \
    --scale "$s" --append "$doc" --title "$name" > /dev/null
done
# Degraded Set5 / Set14 (`bash experiments/default_nonlinear.sh`): folders
# <set>-<kind>-x<s>[-centre]-seed<k>[-<variant>]; the sets are regenerated (ikejax-degrade
# seed 0, as that script makes them), the deltas are against the better filter per image.
sets=${TMPDIR:-/tmp}/ikejax-results-doc-sets
[ -d experiments/kept/default/sets ] && printf '\n# Degraded Set5 and Set14 (x2)\n\nMade by `bash experiments/default_nonlinear.sh` (`--config default`, one image at a time); each folder of `experiments/kept/default/sets/` says its set, degradation, grid and seed; the `COMMAND` file, where there is one, the command. Deltas against the better of bicubic and `sharpen` on each image.\n' >> "$doc"
for dir in experiments/kept/default/sets/*; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir")                       # Set5-median-x2-centre-seed0
  IFS=- read -r set kind sx grid _ <<< "$name"
  s=${sx#x}; case "$grid" in centre) ;; *) grid=corner ;; esac
  deg="$sets/$set-$kind-x$s-$grid"
  [ -d "$deg/lr" ] || ikejax-degrade --hr "${DATA:-../shared/data}/$set" --scale "$s" \
    --kind "$kind" --seed 0 --grid "$grid" --out "$deg" > /dev/null
  [ -f "$dir/COMMAND" ] && printf '\n`%s`\n' "$(cat "$dir/COMMAND")" >> "$doc"
  python experiments/filter_table.py --records "$dir" --lr "$deg/lr" --gt "$deg/hr" --scale "$s" \
    --better --append "$doc" --title "$name" > /dev/null
done
for s in 2 4; do
  for variant in 800it-nowarmup 800it 800it-val; do
    seeds=()
    for d in experiments/kept/default/DIV2KRK-x$s-seed*-"$variant"; do [ -d "$d" ] && seeds+=("$d"); done
    if [ "${#seeds[@]}" -gt 1 ]; then
      python experiments/filter_table.py --records "${seeds[0]}" --seeds "${seeds[@]:1}" \
        --lr "$data/lr_x$s" --gt "$data/gt" --scale "$s" --append "$doc" \
        --title "DIV2KRK-x$s-$variant, spread over ${#seeds[@]} seeds (Y-PSNR)" > /dev/null
    fi
  done
done
if [ -d experiments/kept/methods ]; then
  printf '\n# Other methods on the same images\n\nEach folder of `experiments/kept/methods/` holds the records of one command (its `COMMAND` file).\n' >> "$doc"
  k=experiments/kept
  printf '\n## Side by side, DIV2KRK x2, seed 0\n\n`python experiments/method_table.py` (the folders below; DualSR ran on image 2 only: 65+ minutes per image here)\n\n' >> "$doc"
  python experiments/method_table.py --lr "$data/lr_x2" --gt "$data/gt" --scale 2 \
    "default=$k/default/DIV2KRK-x2-seed0-800it-val" \
    "KernelGAN + ZSSR=$k/methods/DIV2KRK-x2-kernelgan+zssr-seed0-cropmaps" \
    "DualSR=$k/methods/DIV2KRK-x2-dualsr-seed0" \
    "ZSSR, true kernel (non-blind)=$k/methods/DIV2KRK-x2-zssr-truekernel-seed0" >> "$doc"
  for dir in experiments/kept/methods/DIV2KRK-x*; do
    name=$(basename "$dir")
    s=$(echo "$name" | sed -E 's/.*-x([0-9])-.*/\1/')
    printf '\n`%s`\n' "$(cat "$dir/COMMAND")" >> "$doc"
    python experiments/filter_table.py --records "$dir" --lr "$data/lr_x$s" --gt "$data/gt" \
      --scale "$s" --append "$doc" --title "$name" > /dev/null
  done
fi
