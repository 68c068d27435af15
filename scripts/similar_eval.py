"""Which ranking finds better similar photos? Run from the repository root:

    python -m bench.similar_eval --data-root ../shared/flickr8k --features runs/features.p \\
        --model models/caption_model.keras --tokenizer models/tokenizer.p [--split dev] [--k 5]

The collection is every photo of the data root with its reference captions and features. Each photo of
the split is a query: the model captions it from its features, and each ranking (text: TF-IDF cosine of
the generated caption with the collection's captions; image: cosine of the Xception features; both: their
mean) returns its top k other photos. The figure is the share of those matches whose reference captions
contain one of the query photo's main nouns (caption_generator.similar.main_nouns), next to k photos drawn
at random.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from caption_generator import data
from caption_generator.caption import load_captioner
from caption_generator.features import load_features
from caption_generator.files import write_text
from caption_generator.similar import CaptionIndex, rank_eval


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True)
    p.add_argument("--features", required=True, help="features.p of all the data root's photos")
    p.add_argument("--model", action="append", default=None, help="caption model .keras (default: the shipped one)")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    p.add_argument("--k", type=int, default=5, help="matches per query (default: 5)")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the figures and generated captions as JSON here")
    args = p.parse_args(argv)

    features = load_features(args.features)
    present = {path.name for path in data.list_images(data.image_dir(args.data_root))}
    references = data.clean_descriptions(data.read_captions(data.captions_path(args.data_root)))
    references = {n: texts for n, texts in references.items() if n in present and n in features}
    index = CaptionIndex.build(references, features, data.image_dir(args.data_root))
    names = [n for n in data.read_split(args.data_root, args.split) if n in references]
    captioner, _ = load_captioner(args.model, args.tokenizer)
    captions = captioner.caption_features(np.stack([features[n] for n in names]), beam=args.beam)
    queries = {n: (c, features[n]) for n, c in zip(names, captions)}
    start = time.perf_counter()
    scores = rank_eval(index, queries, references, k=args.k)
    per_query_ms = (time.perf_counter() - start) / len(queries) / 3 * 1000
    report = {"split": args.split, "queries": len(queries), "collection": len(index), "k": args.k,
              "share_of_matches_sharing_a_main_noun": scores, "ms_per_query": round(per_query_ms, 2),
              "captions": dict(zip(names, captions))}
    if args.out:
        write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"{len(queries)} {args.split} photos, collection of {len(index)} photos, top {args.k}:")
    print("| ranking | matches sharing a main noun |\n|---|---|")
    for by, share in scores.items():
        print(f"| {by} | {share:.1%} |")
    print(f"about {per_query_ms:.1f} ms per query and ranking")
    return report


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
