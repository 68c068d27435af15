#!/usr/bin/env bash
# Every quality figure in README.md and models/shipped/README.md, from the data to the shipped model:
# per seed, a cross-entropy model with the earlier settings (runs/base_s*, the earlier shipped ensemble) and
# one with the current settings fine-tuned by self-critical training (runs/scst_s*); the ensemble and its
# decoding chosen on dev; the ensemble shipped; then the test split scored once per reported setting.
#   DATA=../shared/flickr8k scripts/reproduce_quality.sh        (about 5 hours on 2 CPU cores)
# Encoder weights: $XCEPTION_WEIGHTS or Keras's ImageNet download. Outputs go to runs/ (git-ignored)
# except the shipped model (models/shipped/, with its sha256 sums) and the reports (models/shipped/eval/).
# A step whose result exists is skipped, and a stopped training run resumes, so rerunning it goes on.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/flickr8k}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"0 1 2"}
SCST_EPOCHS=${SCST_EPOCHS:-"0:8 1:6 2:4"}   # seed:epochs of the first self-critical round
SCST_MORE_SEEDS=${SCST_MORE_SEEDS:-"0 1"}   # the seeds of the second self-critical round
SCST_MORE_EPOCHS=${SCST_MORE_EPOCHS:-8}      # its epochs
EVAL=models/shipped/eval
cg() { "$PY" -m caption_generator "$@"; }
common=(--data-root "$DATA" --descriptions runs/descriptions.txt --features runs/features.p)
mkdir -p runs "$EVAL"

cg prepare --data-root "$DATA" --out runs/descriptions.txt
[ -f runs/features.p ] || cg features --data-root "$DATA" --out runs/features.p
for seed in $SEEDS; do
  base=runs/base_s$seed ce=runs/dev_nodrop_norm_s$seed scst=runs/scst_s$seed
  epochs=$(tr ' ' '\n' <<<"$SCST_EPOCHS" | sed -n "s/^$seed://p")
  # Cross-entropy, the earlier settings (dropout on the photo features, no unit length).
  [ -f "$base/best.keras" ] || cg train "${common[@]}" --tokenizer "$base/tokenizer.p" --out-dir "$base" --plot '' \
      --seed "$seed" --photo-dropout 0.5 --no-normalize-photo $( [ -f "$base/history.json" ] && echo --resume )
  # Cross-entropy, the current defaults (no photo dropout, unit-length photo features).
  [ -f "$ce/loss.png" ] || cg train "${common[@]}" --tokenizer "$ce/tokenizer.p" --out-dir "$ce" --plot '' \
      --seed "$seed" --photo-dropout 0 --normalize-photo $( [ -f "$ce/history.json" ] && echo --resume )
  # Self-critical: CIDEr-D reward of 5 sampled captions per photo, best epoch by dev CIDEr-D.
  [ -f "$scst/scst.png" ] || cg train --scst --from "$ce" --out-dir "$scst" --epochs "${epochs:-6}" "${common[@]}" \
      $( [ -f "$scst/history.json" ] && echo --resume )
done
# A second self-critical round from the first round's best epoch, with a new optimizer, for the seeds whose dev
# CIDEr-D was still rising at the end of the first (0 and 1; seed 2 was best at its first epoch). Not shipped:
# the ensemble with them gained too little on dev (README, "Results").
for seed in $SCST_MORE_SEEDS; do
  more=runs/scst_more_s$seed
  [ -f "$more/scst.png" ] || cg train --scst --from "runs/scst_s$seed" --out-dir "$more" --epochs "$SCST_MORE_EPOCHS" \
      --seed "$seed" "${common[@]}" $( [ -f "$more/history.json" ] && echo --resume )
done

# 512 units, label smoothing 0.1, tied embeddings and a cosine schedule, two seeds each (scripts/tune_dev.sh),
# and self-critical rounds of the 512-unit seed 0 (a seventh member for the ensemble), the label-smoothed seed 1
# and the tied seed 0. Not shipped: no gain on dev.
SEEDS="0 1" DATA=$DATA PY=$PY scripts/tune_dev.sh u512 ls tied cosine
[ -f runs/scst_u512_s0/scst.png ] || cg train --scst --from runs/dev_u512_s0 --out-dir runs/scst_u512_s0 --epochs 10 \
    "${common[@]}" $( [ -f runs/scst_u512_s0/history.json ] && echo --resume )
[ -f runs/scst_ls_s1/scst.png ] || cg train --scst --from runs/dev_ls_s1 --out-dir runs/scst_ls_s1 --epochs 5 \
    "${common[@]}" $( [ -f runs/scst_ls_s1/history.json ] && echo --resume )
[ -f runs/scst_tied_s0/scst.png ] || cg train --scst --from runs/dev_tied_s0 --out-dir runs/scst_tied_s0 --epochs 5 \
    "${common[@]}" $( [ -f runs/scst_tied_s0/history.json ] && echo --resume )

# Every setting on dev (python -m scripts.dev_table runs prints the table), then the decoding of the ensemble.
for run in runs/base_s* runs/dev_*_s* runs/scst_s* runs/scst_more_s* runs/scst_u512_s* runs/scst_ls_s* runs/scst_tied_s*; do
  [ -f "$run/dev_beam1.json" ] || cg evaluate --data-root "$DATA" --split dev --features runs/features.p --beam 1 \
      --model "$run" --out "$run/dev_beam1.json"
done
# Ensembles on dev: the cross-entropy seeds, the self-critical seeds, and all six (shipped: the best).
base=(); scst=(); for seed in $SEEDS; do base+=("runs/base_s$seed"); scst+=("runs/scst_s$seed"); done
tune() { [ -f "$1" ] || "$PY" -m scripts.tune_decoding --data-root "$DATA" --features runs/features.p --score ensemble \
    --penalties 1 --out "$@"; }
tune "$EVAL/dev_tuning_base.json" --runs "${base[@]}" --beams 5
tune "$EVAL/dev_tuning_scst.json" --runs "${scst[@]}" --beams 1 3 5
tune "$EVAL/dev_tuning.json" --runs "${base[@]}" "${scst[@]}" --beams 1 5
# The same six with the second round's models in place of their first round's (not shipped: +0.9 dev CIDEr).
more=(); for seed in $SEEDS; do
  run=runs/scst_more_s$seed; [ -d "$run" ] || run=runs/scst_s$seed; more+=("$run"); done
tune "$EVAL/dev_tuning_more.json" --runs "${base[@]}" "${more[@]}" --beams 5
# The shipped six and the self-critical 512-unit model (not shipped).
tune "$EVAL/dev_tuning_u512.json" --runs "${base[@]}" "${scst[@]}" runs/scst_u512_s0 --beams 5
# The shipped six with other beam widths and length penalties (not the default: within 0.5 dev CIDEr of beam 5).
tune "$EVAL/dev_tuning_beams.json" --runs "${base[@]}" "${scst[@]}" --beams 3 5 8 12 --penalties 0.7 1.0 1.3
# More members (not shipped: at most +0.5 dev CIDEr, with three more models to run): the six with three more
# cross-entropy models, the six with the three other self-critical models, and the six self-critical models alone.
tune "$EVAL/dev_tuning_ce_members.json" --runs "${base[@]}" "${scst[@]}" runs/dev_ls_s1 runs/dev_cosine_s0 \
    runs/dev_nodrop_norm_s0 --beams 5
tune "$EVAL/dev_tuning_scst_members.json" --runs "${base[@]}" "${scst[@]}" runs/scst_u512_s0 runs/scst_ls_s1 \
    runs/scst_tied_s0 --beams 5
tune "$EVAL/dev_tuning_scst_only.json" --runs "${scst[@]}" runs/scst_u512_s0 runs/scst_ls_s1 runs/scst_tied_s0 --beams 5

# Ship the six as one ensemble (their next-word probabilities averaged).
models=(); for run in "${base[@]}" "${scst[@]}"; do models+=(--model "$run/best.keras"); done
cg ship "${models[@]}" --tokenizer runs/scst_s0/tokenizer.p --input-size 299
# Its confidence and familiarity thresholds, chosen on dev and checked (issue 16), shipped beside it.
"$PY" -m scripts.calibrate_confidence --data-root "$DATA" --features runs/features.p --originals "$DATA/originals_dev" \
    --out runs/confidence.npz --report "$EVAL/confidence.json" --figure docs/confidence.png --ship

# The test split: each seed alone (mean and spread) and the shipped ensemble, greedy and the dev's best.
BEAM=${BEAM:-5}; PENALTY=${PENALTY:-1.0}   # the best on dev ($EVAL/dev_tuning.json), the default of caption
for seed in $SEEDS; do
  for beam in $(printf '%s\n' 1 "$BEAM" | sort -u); do
    cg evaluate --data-root "$DATA" --split test --features runs/features.p --beam "$beam" --length-penalty "$PENALTY" \
       --model "runs/scst_s$seed" --out "$EVAL/test_seed${seed}_beam$beam.json"
  done
done
for beam in $(printf '%s\n' 1 "$BEAM" 5 | sort -u); do
  cg evaluate --data-root "$DATA" --split test --features runs/features.p --beam "$beam" --length-penalty "$PENALTY" \
     --out "$EVAL/test_shipped_beam$beam.json"
done

# The 120 original dev photos, and the same 120 photos as the 224x224 copies the model was trained on.
cg evaluate --data-root "$DATA" --images "$DATA/originals_dev" --beam "$BEAM" --length-penalty "$PENALTY" \
   --out "$EVAL/originals_dev_beam$BEAM.json"
cg evaluate --data-root "$DATA" --images "$DATA/originals_dev" --features runs/features.p --beam "$BEAM" \
   --length-penalty "$PENALTY" --out "$EVAL/copies_dev_beam$BEAM.json"

"$PY" -m scripts.quality_table "$EVAL"
