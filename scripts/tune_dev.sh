#!/usr/bin/env bash
# Cross-entropy settings compared on the dev split (issue 11, lever 2): one training run per line of
# CONFIGS below, each scored on dev (greedy, MS-COCO toolkit) -> runs/dev_<name>/dev_beam1.json.
#   DATA=../shared/flickr8k scripts/tune_dev.sh [name ...]     (about 12 min per run on 2 CPU cores)
# A finished run is skipped; the table: python -m scripts.dev_table runs
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/flickr8k}
PY=${PY:-.venv/bin/python}
cg() { "$PY" -m caption_generator "$@"; }
declare -A CONFIGS=(
  [base]="--photo-dropout 0.5 --no-normalize-photo"   # the settings of the earlier shipped model
  [nodrop_norm]="--photo-dropout 0 --normalize-photo"  # the defaults since
  [u512]="--photo-dropout 0 --normalize-photo --units 512 --embedding-dim 512"
  [ls]="--photo-dropout 0 --normalize-photo --label-smoothing 0.1"
  [tied]="--photo-dropout 0 --normalize-photo --tie-embeddings"
  [cosine]="--photo-dropout 0 --normalize-photo --lr-schedule cosine --epochs 12"  # plateau runs were best at 9-11
  [u512_ls]="--photo-dropout 0 --normalize-photo --units 512 --embedding-dim 512 --label-smoothing 0.1"
)
mkdir -p runs
cg prepare --data-root "$DATA" --out runs/descriptions.txt >/dev/null
[ -f runs/features.p ] || cg features --data-root "$DATA" --out runs/features.p
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(base nodrop_norm u512 ls tied cosine u512_ls)
for name in "${names[@]}"; do
  for seed in ${SEEDS:-0}; do
    run=runs/dev_${name}_s$seed
    [ -f "$run/dev_beam1.json" ] && continue  # done: trained and scored
    resume=(); [ -f "$run/history.json" ] && resume=(--resume)  # a stopped run goes on
    cg train --data-root "$DATA" --descriptions runs/descriptions.txt --features runs/features.p \
       --tokenizer "$run/tokenizer.p" --out-dir "$run" --plot '' --seed "$seed" ${CONFIGS[$name]} "${resume[@]}"
    cg evaluate --data-root "$DATA" --split dev --features runs/features.p --beam 1 \
       --model "$run/best.keras" --tokenizer "$run/tokenizer.p" --out "$run/dev_beam1.json"
  done
done
