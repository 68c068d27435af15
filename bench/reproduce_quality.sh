#!/usr/bin/env bash
# Every quality figure in README.md and models/README.md, from the data to the shipped model.
#   DATA=../shared/flickr8k bench/reproduce_quality.sh        (about 1.5 hours on 2 CPU cores)
# Encoder weights: $XCEPTION_WEIGHTS or Keras's ImageNet download. Outputs go to runs/ (git-ignored)
# except the shipped model, which goes to models/ with its sha256 sums, and the reports in models/eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/flickr8k}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"0 1 2"}
cg() { "$PY" -m caption_generator "$@"; }
mkdir -p runs models/eval

cg prepare --data-root "$DATA" --out runs/descriptions.txt
cg features --data-root "$DATA" --out runs/features.p
for seed in $SEEDS; do
  [ -f "runs/base_s$seed/best.keras" ] && [ -z "${RETRAIN:-}" ] && continue
  cg train --data-root "$DATA" --descriptions runs/descriptions.txt --features runs/features.p \
     --tokenizer runs/tokenizer.p --out-dir "runs/base_s$seed" --plot runs/model.png --seed "$seed"
done

# Decoding settings are chosen on the dev split only.
runs=(); for seed in $SEEDS; do runs+=("runs/base_s$seed"); done
"$PY" bench/tune_decoding.py --data-root "$DATA" --features runs/features.p --runs "${runs[@]}" \
    --beams 1 3 5 --penalties 0 0.5 1 --out models/eval/dev_tuning.json
