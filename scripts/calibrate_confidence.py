"""Issue 16: choose the confidence signal and the flag thresholds on the dev split, and check them. Run from
the repository's folder (encoder weights as for captioning: --encoder-weights or $XCEPTION_WEIGHTS):

    python -m scripts.calibrate_confidence --data-root ../shared/flickr8k --features runs/features.p \\
        [--originals ../shared/flickr8k/originals_dev] [--report R.json] [--figure F.png] [--ship]

1. The model (default: the shipped one) captions the dev photos, greedily and with beam 5. Each caption's
   CIDEr-D against its photo's references (caption_generator/cider.py, document frequencies of the dev
   references as the COCO toolkit takes them) is compared with each candidate confidence signal by
   Spearman's rank correlation.
2. Familiarity: each summary of the train photos' features tried, with its threshold at the FLAG_SHARE
   quantile of the dev photos, and which photos from elsewhere, test photos and original dev photos fall
   below it. The one shipped is confidence.summarize.
3. Thresholds: the FLAG_SHARE quantile of the dev photos' familiarity, and of their captions' confidence
   for each beam width in BEAMS, so that at most 2 x FLAG_SHARE of the dev photos are flagged.
4. Checks: the share flagged on the train, dev and test splits, on original dev photos and on photos from
   elsewhere (sample photos that scikit-learn, matplotlib and SciPy ship, and random noise); the mean
   CIDEr-D of flagged and unflagged captions.

Writes the calibration to --out (default confidence.npz); --ship also puts it beside the shipped model.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from caption_generator import load_captioner
from caption_generator.confidence import (DIMENSIONS, NEIGHBOURS, Calibration, assess, familiarity, summarize,
                                          unit_rows)
from caption_generator.data import clean_descriptions
from caption_generator.features import load_features
from caption_generator.files import write_text
from caption_generator.layouts import open_layout

FLAG_SHARE = 0.025  # of the dev photos below each threshold
BEAMS = (1, 2, 3, 4, 5)  # beam widths given a confidence threshold (length penalty 1)
SIGNAL_BEAMS = (1, 5)  # decodings the signals are compared on: the default and the one scored in the README
NOISE_PHOTOS = 3
ELSEWHERE, ORIGINALS = "photos from elsewhere", "original dev photos"


def sample_photos(folder: str | os.PathLike) -> list[Path]:
    """Photos from elsewhere: the sample images scikit-learn, matplotlib and SciPy install, and NOISE_PHOTOS
    images of uniform random noise (seed 0) written into `folder`."""
    import matplotlib
    import scipy.ndimage
    import sklearn.datasets
    from PIL import Image

    samples = Path(matplotlib.get_data_path()) / "sample_data"
    photos = [Path(sklearn.datasets.__file__).parent / "images" / name for name in ("china.jpg", "flower.jpg")]
    photos += [samples / name for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")]
    photos.append(Path(scipy.ndimage.__file__).parent / "tests" / "dots.png")
    rng = np.random.default_rng(0)
    for i in range(NOISE_PHOTOS):
        photos.append(Path(folder) / f"noise_{i}.png")
        Image.fromarray(rng.integers(0, 256, (299, 299, 3), np.uint8)).save(photos[-1])
    return photos


def token_scores(captioner, features: np.ndarray, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per token of each caption (its words, then its end), the log-probability the captioner's decoding
    distribution gives it and that distribution's entropy; (captions, tokens) arrays, NaN past the end."""
    vocab = captioner.vocab
    ids = [vocab.encode(c)[1:] for c in captions]
    tokens = np.full((len(ids), max(map(len, ids))), vocab.pad_id, np.int32)
    for row, sequence in zip(tokens, ids):
        row[:len(sequence)] = sequence
    photos, states = captioner.initial(np.asarray(features, np.float32), 1)
    previous = np.full(len(ids), vocab.start_id, np.int32)
    log_probs, entropies = np.full(tokens.shape, np.nan), np.full(tokens.shape, np.nan)
    for t in range(tokens.shape[1]):
        step, states = captioner.step(photos, previous, states)
        step = step.astype(np.float64)
        real = tokens[:, t] != vocab.pad_id
        log_probs[real, t] = step[real, tokens[real, t]]
        entropies[real, t] = -(np.exp(step[real]) * step[real]).sum(axis=1)  # forbidden words: exp(-1e9) = 0
        previous = tokens[:, t]
    return log_probs, entropies


def signals(captioner, features: np.ndarray, captions: list[str], mean_log_probs: np.ndarray, beam: int,
            calibration: Calibration, cider_of: Callable) -> dict[str, np.ndarray]:
    """Every candidate confidence signal of each caption, higher meaning more sure."""
    from caption_generator.caption import Captioner

    log_probs, entropies = token_scores(captioner, features, captions)
    members = [Captioner(model, captioner.vocab) for model in captioner.models]
    member_means = np.array([np.nanmean(token_scores(m, features, captions)[0], axis=1) for m in members])
    own = [m.beam_search(features, beam) for m in members]
    return {
        "mean log-probability per token (the confidence)": mean_log_probs,
        "total log-probability": np.nansum(log_probs, axis=1),
        "lowest token log-probability": np.nanmin(log_probs, axis=1),
        "minus mean entropy of the next-token distribution": -np.nanmean(entropies, axis=1),
        "members: lowest mean log-probability": member_means.min(axis=0),
        "members: minus spread (sd) of their mean log-probabilities": -member_means.std(axis=0),
        "members: CIDEr-D of their own captions against the ensemble's": np.mean(
            [cider_of(o, [[c] for c in captions]) for o in own], axis=0),
        "familiarity of the photo": familiarity(features, calibration.basis, calibration.photos),
        "minus caption length in words": -np.array([len(c.split()) for c in captions], float),
    }


def summaries(train: np.ndarray, basis: np.ndarray, photos: np.ndarray) -> dict[str, tuple[Callable, float]]:
    """The summaries of the train photos tried for familiarity: their score of photo features, and MB."""
    from sklearn.cluster import KMeans

    def nearest(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.sort(x @ rows.T, axis=1)[:, -NEIGHBOURS:].mean(axis=1)

    units = unit_rows(train)
    centres = unit_rows(KMeans(256, n_init=1, random_state=0).fit(units).cluster_centers_)
    return {
        "cosine to the nearest of 256 k-means centres": (
            lambda x: (unit_rows(x) @ centres.T).max(axis=1), centres.size * 4 / 1e6),
        f"mean cosine to the {NEIGHBOURS} nearest train photos, projected on {DIMENSIONS} dimensions (shipped)": (
            lambda x: familiarity(x, basis, photos), (basis.size + photos.size) * 2 / 1e6),
        "the same, the projections rescaled to unit length": (
            lambda x: nearest(unit_rows(unit_rows(x) @ basis.T.astype(np.float32)), unit_rows(photos)),
            (basis.size + photos.size) * 2 / 1e6),
        f"mean cosine to the {NEIGHBOURS} nearest train photos, all {train.shape[1]} features": (
            lambda x: nearest(unit_rows(x), units), units.size * 4 / 1e6),
    }


def encode_photos(paths: Sequence[Path], weights: str | None, input_size: int) -> dict[Path, np.ndarray]:
    from caption_generator.features import build_encoder, encode, encoder_weights

    encoder = build_encoder(encoder_weights(weights), input_size)
    return {path: vector for path, vector, error in encode(paths, encoder, progress=False) if error is None}


def share(values) -> float:
    return round(float(np.mean(values)), 4)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True)
    p.add_argument("--features", required=True, help="features.p of the train, dev and test photos")
    p.add_argument("--model", action="append", default=None, help="(default: the shipped model)")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--encoder-weights", default=None, help="for the photos from elsewhere (default: $XCEPTION_WEIGHTS)")
    p.add_argument("--originals", default=None, help="a folder of original dev photos to check too")
    p.add_argument("--out", default="confidence.npz", help="where to write the calibration")
    p.add_argument("--report", default=None, help="write every figure, per photo, as JSON here")
    p.add_argument("--figure", default=None, help="draw a few photos with caption, confidence and flag here")
    p.add_argument("--ship", action="store_true", help="also put the calibration beside the shipped model")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = calibrate(args, Path(folder))
    if args.ship:
        from caption_generator.shipped import ship_calibration
        ship_calibration(args.out)
    if args.report:
        write_text(args.report, json.dumps(report, indent=1) + "\n")
    print_tables(report)
    return report


def calibrate(args: argparse.Namespace, folder: Path) -> dict:
    """Steps 1 to 4 of the module's docstring; the calibration -> args.out, the figure -> args.figure."""
    from scipy.stats import spearmanr

    from caption_generator.cider import CiderD

    layout = open_layout(args.data_root)
    features = load_features(args.features)
    references = clean_descriptions(layout.captions())
    names = {split: [n for n in layout.split(split) if n in features and n in references]
             for split in ("train", "dev", "test")}
    vectors = {split: np.stack([features[n] for n in ns]) for split, ns in names.items()}
    split_references = {split: [references[n] for n in names[split]] for split in ("dev", "test")}
    cider = {split: CiderD(refs) for split, refs in split_references.items()}  # each split's own document
    # frequencies, as the COCO toolkit takes them
    captioner, input_size = load_captioner(args.model, args.tokenizer, runtime="keras")  # its members, for signals
    elsewhere = sample_photos(folder)
    originals = sorted(Path(args.originals).glob("*.jpg")) if args.originals else []
    encoded = encode_photos(elsewhere + originals, args.encoder_weights, input_size)
    vectors[ELSEWHERE] = np.stack([encoded[path] for path in elsewhere])
    if originals:
        vectors[ORIGINALS] = np.stack([encoded[path] for path in originals])

    basis, photos = summarize(vectors["train"])
    decoded = {beam: captioner.scored_beam_search(vectors["dev"], beam) for beam in BEAMS}
    familiarity_threshold = float(np.quantile(familiarity(vectors["dev"], basis, photos), FLAG_SHARE))
    confidence_thresholds = np.array([np.quantile(np.exp(decoded[b][1]), FLAG_SHARE) for b in BEAMS])
    calibration = Calibration(basis, photos, familiarity_threshold, np.array(BEAMS), confidence_thresholds)
    calibration.save(args.out)
    report: dict = {"flag_share": FLAG_SHARE, "familiarity_threshold": round(familiarity_threshold, 4),
                    "confidence_thresholds": {b: round(float(t), 4) for b, t in zip(BEAMS, confidence_thresholds)},
                    "familiarity_summaries": {}, "spearman_with_cider_d": {}, "flagged": {}, "mean_cider_d": {},
                    ELSEWHERE: {}}

    for name, (score, megabytes) in summaries(vectors["train"], basis, photos).items():
        on_dev = score(vectors["dev"])
        threshold = np.quantile(on_dev, FLAG_SHARE)
        report["familiarity_summaries"][name] = {
            "MB": round(megabytes, 1),
            **{f"{s} below": share(score(vectors[s]) < threshold)
               for s in vectors if s not in ("train", "dev", ELSEWHERE)},
            "dev photos less familiar than each photo from elsewhere": {
                path.name: share(on_dev < value) for path, value in zip(elsewhere, score(vectors[ELSEWHERE]))}}

    dev_cider = {beam: cider["dev"].score(decoded[beam][0], split_references["dev"]) for beam in SIGNAL_BEAMS}
    for beam in SIGNAL_BEAMS:
        found = signals(captioner, vectors["dev"], *decoded[beam], beam, calibration, cider["dev"].score)
        report["spearman_with_cider_d"][beam] = {
            k: round(float(spearmanr(v, dev_cider[beam]).statistic), 3) for k, v in found.items()}

    shown = []
    for beam in SIGNAL_BEAMS:
        for split in vectors if beam == 1 else [s for s in vectors if s != "train"]:  # train: 6,000 photos
            captions, mean_log_probs = decoded[beam] if split == "dev" else \
                captioner.scored_beam_search(vectors[split], beam)
            found = assess(mean_log_probs, vectors[split], calibration, beam, 1.0)
            report["flagged"][f"{split}, beam {beam}"] = {
                "photos": len(found), "flagged": share([a.flagged for a in found]),
                "unfamiliar": share([a.unfamiliar for a in found]), "unsure": share([a.unsure for a in found])}
            if split in cider:
                scores = cider[split].score(captions, split_references[split])
                flagged = np.array([a.flagged for a in found])
                report["mean_cider_d"][f"{split}, beam {beam}"] = {
                    "flagged": round(float(scores[flagged].mean()), 3),
                    "unflagged": round(float(scores[~flagged].mean()), 3), "all": round(float(scores.mean()), 3)}
            if split == ELSEWHERE:
                report[ELSEWHERE][beam] = {
                    path.name: {"caption": c, "confidence": round(a.confidence, 3),
                                "familiarity": round(a.familiarity, 3), "flagged": a.flagged}
                    for path, c, a in zip(elsewhere, captions, found)}
                shown += [(path, c, a, None) for path, c, a in zip(elsewhere, captions, found)] if beam == 1 else []
    if args.figure:
        draw(args.figure, names["dev"], layout, decoded[1], dev_cider[1], vectors["dev"], calibration, shown, folder)
    return report


def draw(path: str, dev_names: list[str], layout, dev_decoded, dev_cider: np.ndarray, dev_vectors: np.ndarray,
         calibration: Calibration, elsewhere: list, folder: Path) -> None:
    """Dev photos the model is surest and least sure of, and photos from elsewhere, each with its caption,
    confidence, familiarity and flag; the photos squashed to 4:3 (in `folder`), as the encoder squashes them."""
    from PIL import Image

    from caption_generator.features import load_image
    from caption_generator.show import photo_grid, save_figure

    def flag(a) -> str:
        reasons = ["unfamiliar photo"] * a.unfamiliar + ["model unsure"] * a.unsure
        return "FLAGGED: " + ", ".join(reasons) if reasons else "not flagged"

    captions, mean_log_probs = dev_decoded
    found = assess(mean_log_probs, dev_vectors, calibration, 1, 1.0)
    order = np.argsort([a.confidence for a in found])
    chosen = [(layout.photo_path(dev_names[i]), captions[i], found[i], dev_cider[i]) for i in [*order[-2:], *order[:2]]]
    pick = {"china.jpg", "flower.jpg", "Minduka_Present_Blue_Pack.png", "noise_0.png"}
    chosen += [item for item in elsewhere if item[0].name in pick]
    texts = [f'{flag(a)}\n"{caption}"\nconfidence {a.confidence:.2f}, familiarity {a.familiarity:.2f}'
             + (f"\ndev photo, CIDEr-D {score:.2f}" if score is not None else "") for _, caption, a, score in chosen]
    shown = []
    for photo, *_ in chosen:
        shown.append(folder / f"shown_{len(shown)}.png")
        pixels = ((load_image(photo, 300) + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(pixels).resize((400, 300), Image.BILINEAR).save(shown[-1])
    save_figure(photo_grid(shown, texts, columns=4, width=36, cell=3.6), path)


def print_tables(report: dict) -> None:
    """The README's tables."""
    beams = list(report["spearman_with_cider_d"])
    print("| signal | " + " | ".join(f"Spearman, beam {b}" for b in beams) + " |\n|---|" + "---|" * len(beams))
    for signal in report["spearman_with_cider_d"][beams[0]]:
        print(f"| {signal} | " + " | ".join(f"{report['spearman_with_cider_d'][b][signal]:+.3f}" for b in beams) + " |")
    print("\nsummaries of the train photos: MB, shares below the threshold, then for each photo from elsewhere "
          "the share of dev photos less familiar")
    for name, found in report["familiarity_summaries"].items():
        print(f"| {name} | " + " | ".join(f"{v:.1%}" if isinstance(v, float) and k != "MB" else
                                          ", ".join(f"{n} {x:.1%}" for n, x in v.items()) if isinstance(v, dict) else
                                          str(v) for k, v in found.items()) + " |")
    print(f"\nfamiliarity threshold {report['familiarity_threshold']}, confidence thresholds "
          + ", ".join(f"beam {b}: {t}" for b, t in report["confidence_thresholds"].items()))
    print("\n| photos | flagged | mean CIDEr-D flagged / unflagged / all |\n|---|---|---|")
    for key, rate in report["flagged"].items():
        cider = report["mean_cider_d"].get(key)
        scores = f"{cider['flagged']:.3f} / {cider['unflagged']:.3f} / {cider['all']:.3f}" if cider else ""
        print(f"| {key} ({rate['photos']}) | {rate['flagged']:.1%} | {scores} |")
    for beam, photos in report[ELSEWHERE].items():
        print(f"\n{ELSEWHERE}, beam {beam}:")
        for name, found in photos.items():
            print(f"  {name}: {'FLAGGED' if found['flagged'] else 'ok'} confidence {found['confidence']:.2f} "
                  f"familiarity {found['familiarity']:.2f} \"{found['caption']}\"")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
