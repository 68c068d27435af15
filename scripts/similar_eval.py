"""Which ranking finds better similar photos? Run from the repository's folder:

    python -m scripts.similar_eval --data-root ../shared/flickr8k --features runs/features.p \\
        [--model models/ --tokenizer models/tokenizer.p] [--split dev] [--k 5]

The collection is every photo of the data root with its reference captions and features. Each photo of
the split is a query: the model captions it from its features, and each ranking (text: TF-IDF cosine of
the generated caption with the collection's captions; image: cosine of the Xception features; both: their
mean) returns its top k other photos. The figure is the share of those matches whose reference captions
contain one of the query photo's main nouns (main_nouns below), next to k photos drawn at random.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from typing import Sequence

import numpy as np

from caption_generator import load_captioner
from caption_generator.data import clean_descriptions
from caption_generator.features import load_features
from caption_generator.files import write_text
from caption_generator.layouts import SPLITS, open_layout
from caption_generator.pipeline import DEFAULT_BEAM
from caption_generator.similar import RANKINGS, CaptionIndex

_NOT_NOUNS = {"black", "white", "red", "blue", "green", "yellow", "brown", "orange", "pink", "purple",
              "gray", "grey", "little", "small", "big", "large", "young", "old", "dark", "colorful"}


def main_nouns(references: Sequence[str]) -> set[str]:
    """A photo's main nouns, approximately and without a tagger: the content words (not an English
    stop word, a colour or size word, or an -ing form longer than five letters) used by at least half
    of its cleaned references, or else the most frequent one."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    def content(caption: str) -> set[str]:
        return {w for w in caption.split() if w not in ENGLISH_STOP_WORDS and w not in _NOT_NOUNS
                and not (w.endswith("ing") and len(w) > 5)}

    counts = Counter(w for caption in references for w in content(caption))
    common = {w for w, n in counts.items() if n >= len(references) / 2}
    return common or {w for w, _ in counts.most_common(1)}


def rank_eval(index: CaptionIndex, queries: dict[str, tuple[str, np.ndarray]],
              references: dict[str, list[str]], k: int = 5, seed: int = 0) -> dict[str, float]:
    """The share of top-k matches that are relevant, per ranking (and for k photos drawn at random).

    A query is a photo of the collection, given as {name: (generated caption, features)}; its own entry
    is excluded. A match is relevant when one of its cleaned reference captions contains one of the
    query photo's main nouns (see main_nouns).
    """
    rng = np.random.default_rng(seed)
    words = {name: set(" ".join(texts).split()) for name, texts in references.items()}
    hits: dict[str, list[float]] = {by: [] for by in (*RANKINGS, "random")}
    for name, (caption, vector) in queries.items():
        nouns = main_nouns(references[name])
        for by in RANKINGS:
            found = index.query(caption, vector, k, by, threshold=-np.inf, exclude=name).matches
            hits[by] += [bool(nouns & words[m.name]) for m in found]
        others = [p for p in rng.choice(len(index), k + 1, replace=False) if index.photos[p] != name][:k]
        hits["random"] += [bool(nouns & words[index.photos[p]]) for p in others]
    return {by: round(float(np.mean(h)), 4) for by, h in hits.items()}



def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True)
    p.add_argument("--features", required=True, help="features.p of all the data root's photos")
    p.add_argument("--model", action="append", default=None,
                   help="caption model .keras or a training run's folder (default: the shipped model)")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--split", default="dev", choices=SPLITS)
    p.add_argument("--k", type=int, default=5, help="matches per query (default: 5)")
    p.add_argument("--beam", type=int, default=DEFAULT_BEAM)
    p.add_argument("--out", default=None, help="also write the figures and generated captions as JSON here")
    args = p.parse_args(argv)

    layout = open_layout(args.data_root)
    features = load_features(args.features)
    present = {path.name for path in layout.photos()}
    references = clean_descriptions(layout.captions())
    references = {n: texts for n, texts in references.items() if n in present and n in features}
    index = CaptionIndex.build(references, features, layout)
    names = [n for n in layout.split(args.split) if n in references]
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
