#!/usr/bin/env bash
# Every quality figure in README.md and models/shipped/README.md, from the data to the shipped model.
#   DATA=../shared/flickr8k scripts/reproduce_quality.sh        (about 1.5 hours on 2 CPU cores)
# Encoder weights: $XCEPTION_WEIGHTS or Keras's ImageNet download. Outputs go to runs/ (git-ignored)
# except the shipped model, which goes to models/shipped/ with its sha256 sums, and the reports in models/shipped/eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/flickr8k}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"0 1 2"}
cg() { "$PY" -m caption_generator "$@"; }
mkdir -p runs models/shipped/eval

cg prepare --data-root "$DATA" --out runs/descriptions.txt
[ -f runs/features.p ] || cg features --data-root "$DATA" --out runs/features.p
for seed in $SEEDS; do
  [ -f "runs/base_s$seed/best.keras" ] && [ -z "${RETRAIN:-}" ] && continue
  cg train --data-root "$DATA" --descriptions runs/descriptions.txt --features runs/features.p \
     --tokenizer runs/tokenizer.p --out-dir "runs/base_s$seed" --plot runs/model.png --seed "$seed"
done

# Decoding settings are chosen on the dev split only.
runs=(); for seed in $SEEDS; do runs+=("runs/base_s$seed"); done
"$PY" -m scripts.tune_decoding --data-root "$DATA" --features runs/features.p --runs "${runs[@]}" \
    --score ensemble --beams 1 3 5 --penalties 0.5 1 1.5 --out models/shipped/eval/dev_tuning.json

# Ship the three seeds as one ensemble (their next-word probabilities averaged).
models=(); for seed in $SEEDS; do models+=(--model "runs/base_s$seed/best.keras"); done
cg ship "${models[@]}" --tokenizer runs/base_s0/tokenizer.p --input-size 299

# The test split: each seed alone (mean and spread) and the shipped ensemble, greedy and beam.
BEAM=${BEAM:-5}; PENALTY=${PENALTY:-1.0}   # the best on dev (models/shipped/eval/dev_tuning.json)
for seed in $SEEDS; do
  for beam in 1 "$BEAM"; do
    cg evaluate --data-root "$DATA" --split test --features runs/features.p --beam "$beam" --length-penalty "$PENALTY" \
       --model "runs/base_s$seed/best.keras" --tokenizer runs/base_s0/tokenizer.p --out "models/shipped/eval/test_seed${seed}_beam$beam.json"
  done
done
for beam in 1 "$BEAM"; do
  cg evaluate --data-root "$DATA" --split test --features runs/features.p --beam "$beam" --length-penalty "$PENALTY" \
     --out "models/shipped/eval/test_shipped_beam$beam.json"
done

# The 120 original dev photos, and the same 120 photos as the 224x224 copies the model was trained on.
cg evaluate --data-root "$DATA" --images "$DATA/originals_dev" --beam "$BEAM" --length-penalty "$PENALTY" \
   --out models/shipped/eval/originals_dev_beam$BEAM.json
cg evaluate --data-root "$DATA" --images "$DATA/originals_dev" --features runs/features.p --beam "$BEAM" \
   --length-penalty "$PENALTY" --out models/shipped/eval/copies_dev_beam$BEAM.json

"$PY" scripts/quality_table.py models/shipped/eval
