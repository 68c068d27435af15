"""The same captions on ONNX Runtime as on Keras (issue 13): a split captioned on each runtime, each encoding
the photos itself, with the share of identical captions, both runtimes' scores side by side and the captions
that differ.

    python -m scripts.compare_runtimes --data-root ../shared/flickr8k  # -> models/shipped/eval/runtimes_test_beam5.json

The encoder is exported to ONNX first if it is not in the cache.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from caption_generator import evaluate_split
from caption_generator.files import write_text
from caption_generator.pipeline import DEFAULT_BEAM
from caption_generator.shipped import MODELS_DIR

RUNTIMES = ("keras", "onnx")


def compare(data_root: str, split: str, beam: int, encoder_weights: str | None) -> dict:
    """Both runtimes' reports on the split, and how their captions compare."""
    reports = {runtime: evaluate_split(data_root, split, beam, encoder_weights=encoder_weights, runtime=runtime)
               for runtime in RUNTIMES}
    keras, onnx = (reports[runtime]["captions"] for runtime in RUNTIMES)
    differing = {name: {"keras": keras[name], "onnx": onnx[name]} for name in keras if keras[name] != onnx[name]}
    return {"split": split, "photos": len(keras), "beam": beam,
            "identical_captions": 1 - len(differing) / len(keras),
            **{runtime: {k: reports[runtime][k] for k in ("coco", "nltk_corpus_bleu")} for runtime in RUNTIMES},
            "coco_difference_onnx_minus_keras": {metric: round(reports["onnx"]["coco"][metric] - value, 2)
                                                 for metric, value in reports["keras"]["coco"].items()},
            "differing_captions": differing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="the Flickr8k data root")
    parser.add_argument("--split", default="test")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM)
    parser.add_argument("--encoder-weights", default=None, help="(default: $XCEPTION_WEIGHTS, else Keras's download)")
    parser.add_argument("--out", type=Path, default=None,
                        help="(default: models/shipped/eval/runtimes_SPLIT_beamBEAM.json)")
    args = parser.parse_args()
    report = compare(args.data_root, args.split, args.beam, args.encoder_weights)
    out = args.out or MODELS_DIR / "eval" / f"runtimes_{args.split}_beam{args.beam}.json"
    write_text(out, json.dumps(report, indent=1) + "\n")
    print(f"{report['photos']} photos, beam {args.beam}: {report['identical_captions']:.1%} identical captions")
    for runtime in RUNTIMES:
        print(f"{runtime}: " + ", ".join(f"{k} {v:.1f}" for k, v in report[runtime]["coco"].items()))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
