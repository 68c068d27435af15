"""Command line: one subcommand per stage (python -m caption_generator --help)."""
from __future__ import annotations

import argparse
import logging
import sys

from .files import CaptionError
from .layouts import LAYOUTS
from .config import ScstConfig, TrainConfig, cluster_position


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=".", help="dataset folder: photos and captions (default: .)")
    _layout_arg(p)


def _layout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default=None, choices=LAYOUTS,
                   help="how --data-root is laid out (default: detected): flickr8k (Flickr8k_text/, Flicker8k_Dataset/), "
                        "karpathy (dataset_*.json and a photo folder), captions_csv (Images/, captions.txt), "
                        "folder_csv (photos and one image,caption[,split] CSV)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N photos of each split (quick runs)")


def _caption_args(p: argparse.ArgumentParser) -> None:
    """The options of the caption command and of testing_caption_generator.py."""
    p.add_argument("-i", "--image", action="append", required=True,
                   help="photo file or folder of photos (repeatable)")
    _encoder_args(p)
    _captioner_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per photo: image, caption")
    _similar_args(p)


def _index_args(p: argparse.ArgumentParser, data_root: str | None) -> None:
    p.add_argument("--data-root", default=data_root,
                   help="Flickr8k folder whose photos and reference captions are the collection to search"
                        + ("" if data_root else " (default: use the saved --index as it is)"))
    _layout_arg(p)
    p.add_argument("--index", default="caption_index.p",
                   help="saved index of the collection, built from --data-root when missing or out of date "
                        "(default: caption_index.p)")
    p.add_argument("--features", default=None,
                   help="features.p of the collection's photos, for --by image/both (default: features.p if present)")


def _similar_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--similar", type=int, default=0, metavar="N",
                   help="also show up to N photos of the collection similar to each photo")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="least similarity shown; if none reaches it, the closest below it (default: 0.9)")
    p.add_argument("--by", choices=["text", "image", "both"], default=None,
                   help="rank by caption text (TF-IDF cosine), photo features, or both "
                        "(default: both if the index has photo features, else text)")
    p.add_argument("--save", default=None, metavar="PNG", help="draw the photos and their similar ones here")
    _index_args(p, None)


def _open_index(args: argparse.Namespace):
    """The collection index for --similar, built and saved first if needed."""
    from pathlib import Path

    from .similar import open_index
    features = args.features or ("features.p" if args.data_root and Path("features.p").is_file() else None)
    return open_index(args.index, args.data_root, features)


def _encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-weights", default=None,
                   help="local Xception weights file (default: $XCEPTION_WEIGHTS, else Keras's ImageNet download)")
    p.add_argument("--input-size", type=int, default=None,
                   help="encoder input size in pixels (default: 299, or the shipped model's)")
    p.add_argument("--batch-size", type=int, default=8, help="photos per encoder batch (default: 8)")
    p.add_argument("--bfloat16", action="store_true",
                   help="run the encoder in bfloat16: ~3x faster on CPUs with AVX-512 BF16 (see README)")


def cmd_prepare(args: argparse.Namespace) -> None:
    from . import data
    descriptions = data.prepare(args.data_root, args.out)
    print(f"{sum(map(len, descriptions.values()))} captions of {len(descriptions)} photos -> {args.out}")


def cmd_features(args: argparse.Namespace) -> None:
    from . import data, features
    if args.merge:
        result = features.merge_features(args.out)
        print(f"features of {len(result)} photos -> {args.out}")
        return
    index, count = cluster_position()  # under TF_CONFIG, this worker's share of the photos
    paths = features.shard(data.photo_paths(args.data_root, args.limit), index, count)
    out = args.out if count == 1 else features.part_path(args.out, index, count)
    encoder = features.build_encoder(features.encoder_weights(args.encoder_weights),
                                     args.input_size or features.DEFAULT_INPUT_SIZE, args.bfloat16)
    result = features.extract_features(paths, encoder, out=out, batch_size=args.batch_size,
                                       chunk_size=args.chunk_size)
    print(f"features of {len(result)} photos -> {out}" + ("; when every worker is done, run features --merge"
                                                           if count > 1 else ""))


def cmd_verify(args: argparse.Namespace) -> None:
    from . import data
    counts = data.verify(args.data_root, args.sums)
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    if counts["differ"] or counts["missing"]:
        raise CaptionError(f"{counts['differ']} photos differ from the original release and "
                           f"{counts['missing']} are missing (see the warnings above)")


def _given(args: argparse.Namespace, config_class: type) -> dict:
    """The options of a config dataclass that were given on the command line (the others default to None)."""
    return {k: getattr(args, k) for k in config_class.__dataclass_fields__ if getattr(args, k, None) is not None}


def cmd_train(args: argparse.Namespace) -> None:
    if args.scst or args.from_dir:
        return cmd_scst(args)
    from .features import load_features
    from .model import build_model_from, plot
    from .train import load_splits, train_model
    from .vocabulary import Vocabulary
    config = TrainConfig(**_given(args, TrainConfig))
    splits = load_splits(args.data_root, args.descriptions, config.limit)
    features = load_features(args.features)
    vocab = Vocabulary.build((c for texts in splits["train"].values() for c in texts), config.min_count)
    model = build_model_from(config, len(vocab))
    chief = cluster_position()[0] == 0  # with several workers, only the chief writes
    if args.plot and chief:
        plot(model, args.plot)
    _, history = train_model(model, splits, vocab, features, args.out_dir, config, args.resume, verbose=2)
    if chief:
        vocab.save(args.tokenizer)
    best = min(history, key=lambda h: h["val_loss"])
    print(f"best dev loss {best['val_loss']:.4f} at epoch {best['epoch']} -> {args.out_dir}/best.keras "
          f"(vocabulary of {len(vocab)} words -> {args.tokenizer})")


def cmd_scst(args: argparse.Namespace) -> None:
    from .features import load_features
    from .scst import fine_tune
    from .train import load_splits
    if not (args.scst and args.from_dir):
        raise CaptionError("self-critical training needs both --scst and --from RUN_DIR (a cross-entropy run)")
    unused = sorted(set(_given(args, TrainConfig)) - set(ScstConfig.__dataclass_fields__))
    if unused:
        raise CaptionError(f"--{unused[0].replace('_', '-')} does not apply to train --scst")
    config = ScstConfig(**_given(args, ScstConfig))
    splits = load_splits(args.data_root, args.descriptions, config.limit)
    history = fine_tune(args.from_dir, splits, load_features(args.features), args.out_dir, config, args.resume)
    best = max(history, key=lambda h: h["dev_cider"])
    print(f"best dev CIDEr-D {best['dev_cider']:.3f} at epoch {best['epoch']} (epoch 0: {history[0]['dev_cider']:.3f}) "
          f"-> {args.out_dir}/best.keras, {args.out_dir}/tokenizer.p")


def _image_paths(inputs: list[str]) -> tuple[list, list[str]]:
    """Files and folders of photos -> (photo paths, errors for inputs that are neither)."""
    from pathlib import Path

    from .data import list_images
    paths, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            paths += found
            if not found:
                errors.append(f"{path}: a folder with no photos in it")
        elif path.is_file():
            paths.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return paths, errors


def cmd_caption(args: argparse.Namespace) -> int:
    import json
    paths, errors = _image_paths(args.image)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if not paths:
        return 2
    from .caption import caption_encoded, load_captioner
    from .features import build_encoder, encode, encoder_weights
    if args.similar < 0 or (args.save and not args.similar):
        raise CaptionError("--similar takes a number of photos >= 1" if args.similar < 0
                           else "--save draws the similar photos: give --similar N too")
    weights = encoder_weights(args.encoder_weights)
    captioner, input_size = load_captioner(args.model, args.tokenizer)
    index = _open_index(args) if args.similar else None
    encoder = build_encoder(weights, args.input_size or input_size, args.bfloat16)
    several = len(paths) > 1 or len(args.image) > 1
    shown = []
    encoded = encode(paths, encoder, batch_size=args.batch_size, progress=len(paths) > 20)
    for path, vector, caption, error in caption_encoded(encoded, captioner, args.beam, args.length_penalty):
        similar = None if error or not index else index.query(
            caption, vector, args.similar, args.by or index.default_by(), args.threshold, exclude=path.name)
        if similar:
            shown.append((path, caption, similar))
        if error:
            errors.append(error)
            print(f"error: {error}", file=sys.stderr)
        elif args.json:
            found = {"similar": similar.to_json()} if similar else {}
            print(json.dumps({"image": str(path), "caption": caption, **found}), flush=True)
        else:
            print(f"{path}\t{caption}" if several else caption, flush=True)
            if similar:
                print(similar.describe(), flush=True)
    if args.save and shown:
        from .show import save_figure
        from .similar import similar_figure
        save_figure(similar_figure(shown), args.save)
        print(f"figure of {len(shown)} photos and their similar ones -> {args.save}", file=sys.stderr)
    return 2 if errors else 0


def cmd_index(args: argparse.Namespace) -> None:
    index = _open_index(args)
    kind = "captions and photo features" if index.features is not None else "captions only"
    print(f"{len(index.captions)} captions of {len(index)} photos ({kind}) -> {args.index}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from . import data
    from .caption import load_captioner
    from .evaluate import evaluate
    from .features import build_encoder, encoder_weights, extract_features, load_features
    from .files import write_text
    captioner, input_size = load_captioner(args.model, args.tokenizer)
    raw = data.read_captions(data.captions_path(args.data_root))
    clean = data.clean_descriptions(raw)
    if args.images:
        paths = [p for p in data.list_images(args.images) if p.name in raw]
        if not paths:
            raise CaptionError(f"{args.images}: no photo with a reference caption")
    else:
        folder = data.image_dir(args.data_root)
        paths = [folder / n for n in data.read_split(args.data_root, args.split)[:args.limit]]
    if args.features:
        features = load_features(args.features)
    else:
        encoder = build_encoder(encoder_weights(args.encoder_weights), args.input_size or input_size, args.bfloat16)
        features = extract_features(paths, encoder, batch_size=args.batch_size)
    names = [p.name for p in paths if p.name in features]
    report = evaluate(captioner, features, names, raw, clean, args.beam, args.length_penalty)
    report["split"] = "images in " + str(args.images) if args.images else args.split
    text = json.dumps(report, indent=1)
    if args.out:
        write_text(args.out, text + "\n")
    if args.json:
        print(text)
    else:
        print(f"{report['photos']} photos, beam {args.beam}, length penalty {args.length_penalty}")
        print("MS-COCO toolkit: " + ", ".join(f"{k} {v:.1f}" for k, v in report["coco"].items()))
        print("nltk corpus BLEU: " + ", ".join(f"{k} {v:.1f}" for k, v in report["nltk_corpus_bleu"].items()))
        if args.out:
            print(f"captions and scores -> {args.out}")


def cmd_ship(args: argparse.Namespace) -> None:
    from .caption import ship
    manifest = ship(args.model, args.tokenizer, args.input_size)
    print("shipped " + ", ".join(f"{name} (sha256 {digest[:12]}…)" for name, digest in manifest["sha256"].items()))


def _captioner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None,
                   help="caption model .keras, or a training run's folder for its best.keras "
                        "(repeat for an ensemble; default: the shipped model)")
    p.add_argument("--tokenizer", default=None,
                   help="vocabulary tokenizer.p (default: the one beside --model, or the shipped one)")
    p.add_argument("--beam", type=int, default=1, help="beam width (default: 1, greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0,
                   help="beam search: rank captions by log-probability / length**P (default: 1.0)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caption_generator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="clean the captions -> descriptions.txt")
    _data_args(p)
    p.add_argument("--out", default="descriptions.txt")
    p.set_defaults(run=cmd_prepare)

    p = commands.add_parser("features", help="Xception features of the photos -> features.p (resumable)")
    _data_args(p)
    _encoder_args(p)
    p.add_argument("--out", default="features.p")
    p.add_argument("--chunk-size", type=int, default=256,
                   help="photos per saved chunk; a killed run resumes after the last chunk (default: 256)")
    p.add_argument("--merge", action="store_true",
                   help="merge the parts written by the workers of a TF_CONFIG cluster into --out")
    p.set_defaults(run=cmd_features)

    p = commands.add_parser("verify", help="check the photos against the original release's sha256 sums")
    _data_args(p)
    p.add_argument("--sums", required=True, help="TSV of name, size, sha256 (original_image_sha256.tsv)")
    p.set_defaults(run=cmd_verify)

    p = commands.add_parser("train", help="train the merge model (train split, early stopping on dev)")
    _data_args(p)
    p.add_argument("--descriptions", default="descriptions.txt")
    p.add_argument("--features", default="features.p")
    p.add_argument("--tokenizer", default="tokenizer.p", help="where to write the vocabulary")
    p.add_argument("--out-dir", default="models", help="checkpoints, history and loss curve (default: models)")
    p.add_argument("--plot", default="model.png", help="draw the model here ('' to skip)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out-dir")
    scst_defaults = vars(ScstConfig())
    shared = [n for n in scst_defaults if n in TrainConfig.__dataclass_fields__]
    p.add_argument("--scst", action="store_true",
                   help="self-critical training (CIDEr-D reward) of the run in --from; it takes "
                        + ", ".join("--" + n.replace("_", "-") for n in shared))
    p.add_argument("--from", dest="from_dir", default=None, metavar="RUN_DIR",
                   help="with --scst: the cross-entropy run to start from (its best.keras and tokenizer.p)")
    for name, value in vars(TrainConfig()).items():  # default None: _given tells the options given
        scst = f"; with --scst: {scst_defaults[name]}" if name in scst_defaults else ""
        if isinstance(value, bool):
            p.add_argument("--" + name.replace("_", "-"), action=argparse.BooleanOptionalAction, default=None,
                           help=f"(default: {value}{scst})")
        elif name != "limit":
            p.add_argument("--" + name.replace("_", "-"), type=type(value), default=None,
                           help=f"(default: {value}{scst})")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("caption", help="caption photos (files or folders)")
    _caption_args(p)
    p.set_defaults(run=cmd_caption)

    p = commands.add_parser("index", help="index a collection for caption --similar -> caption_index.p")
    _index_args(p, ".")
    p.set_defaults(run=cmd_index)

    p = commands.add_parser("evaluate", help="caption a split and score it (MS-COCO toolkit and nltk BLEU)")
    _data_args(p)
    _encoder_args(p)
    _captioner_args(p)
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--images", default=None, help="score the photos of this folder instead of a split")
    p.add_argument("--features", default=None, help="features.p to use instead of encoding the photos")
    p.add_argument("--out", default=None, help="write the report with every caption as JSON here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("ship", help="put trained model(s) and their vocabulary in models/shipped/ with sha256 sums")
    p.add_argument("--model", action="append", required=True, help="best.keras of a run (repeat for an ensemble)")
    p.add_argument("--tokenizer", required=True, help="the runs' tokenizer.p")
    p.add_argument("--input-size", type=int, default=299, help="encoder input size the features were made with")
    p.set_defaults(run=cmd_ship)

    args = parser.parse_args(argv)
    if args.command == "train" and cluster_position()[1] > 1:
        from .train import distribution_strategy
        distribution_strategy()  # multi-worker collectives must be set up before any TensorFlow operation
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        if getattr(args, "layout", None) and args.data_root is not None:
            from .layouts import open_layout
            args.data_root = open_layout(args.data_root, args.layout)
        status = args.run(args)
    except CaptionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
