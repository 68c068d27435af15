"""Choose decoding settings on the dev split: every trained run alone and all of them as an ensemble,
greedy and beam search with several length penalties, scored with the MS-COCO toolkit.

    python -m scripts.tune_decoding --data-root ../shared/flickr8k --features runs/features.p \
        --runs runs/base_s0 runs/base_s1 runs/base_s2 --beams 1 3 5 --penalties 0.5 1 --out runs/dev_tuning.json

Each run folder holds best.keras and tokenizer.p (python -m caption_generator train --out-dir ...).
The test split is never touched here.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (best.keras + tokenizer.p)")
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--penalties", nargs="+", type=float, default=[0.0, 0.5, 1.0])
    parser.add_argument("--score", choices=["each", "ensemble", "both"], default="both",
                        help="score each run alone, all runs as one ensemble, or both (default)")
    parser.add_argument("--out", required=True, help="JSON with every setting's scores")
    args = parser.parse_args()

    from caption_generator.caption import Captioner
    from caption_generator.data import clean_descriptions
    from caption_generator.evaluate import evaluate
    from caption_generator.features import load_features
    from caption_generator.files import write_text
    from caption_generator.layouts import open_layout
    from caption_generator.model import load_model
    from caption_generator.vocabulary import TOKENIZER_FILE, Vocabulary

    layout = open_layout(args.data_root)
    references = layout.captions()
    clean = clean_descriptions(references)
    names = layout.split("dev")
    features = load_features(args.features)
    vocab = Vocabulary.load(Path(args.runs[0]) / TOKENIZER_FILE)
    models = {run: load_model(Path(run) / "best.keras") for run in args.runs}
    candidates = {run: [model] for run, model in models.items()} if args.score != "ensemble" else {}
    if len(models) > 1 and args.score != "each":
        candidates["ensemble of " + " + ".join(args.runs)] = list(models.values())
    results = []
    for label, members in candidates.items():
        captioner = Captioner(members, vocab)
        for beam in args.beams:
            for penalty in (args.penalties if beam > 1 else [0.0]):
                report = evaluate(captioner, features, names, references, clean, beam, penalty)
                words = sum(len(c.split()) for c in report["captions"].values()) / len(names)
                row = {"model": label, "beam": beam, "length_penalty": penalty, **report["coco"],
                       "mean_words": round(words, 2)}
                results.append(row)
                print(json.dumps(row), flush=True)
    write_text(args.out, json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
