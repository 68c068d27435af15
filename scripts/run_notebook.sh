#!/usr/bin/env bash
# The research notebook, top to bottom on all of Flickr8k (every photo, full training, scores on the
# test split), as a user runs it in the repository's folder; the executed copy with its outputs goes to
# docs/Training_caption_generator.executed.ipynb, which the README links.
#   DATA=../shared/flickr8k scripts/run_notebook.sh
# Encoder weights: $XCEPTION_WEIGHTS or Keras's ImageNet download. Writes the tutorial's artefacts
# (descriptions.txt, features.p, tokenizer.p, model.png, caption_index.p, models/), all git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/flickr8k}
PY=${PY:-.venv/bin/python}
start=$(date +%s)
"$PY" -m papermill Training_caption_generator.ipynb docs/Training_caption_generator.executed.ipynb \
    -p DATA_ROOT "$DATA" --progress-bar
"$PY" -m scripts.compact_notebook docs/Training_caption_generator.executed.ipynb  # pictures as JPEG: a few MB
echo "the whole notebook took $(( ($(date +%s) - start) / 60 )) min -> docs/Training_caption_generator.executed.ipynb"
