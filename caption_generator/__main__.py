"""Command line: one subcommand per stage (python -m caption_generator --help).

Each command parses its arguments, makes one call to the package, and prints what it did; bad input
ends in one `error:` line and exit status 2.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

from . import data, demo, features, pipeline, similar
from .cluster import cluster_position, distribution_strategy
from .config import DEFAULT_OUT_DIR, DEFAULT_PLOT, LR_SCHEDULES, ScstConfig, TrainConfig
from .errors import CaptionError
from .files import write_text
from .layouts import LAYOUTS, SPLITS, open_layout
from .vocabulary import TOKENIZER_FILE

DATA_ROOT = "."  # the data root of the commands that read one: the current folder


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=DATA_ROOT,
                   help=f"dataset folder: photos and captions (default: {DATA_ROOT})")
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
    p.add_argument("--json", action="store_true",
                   help="one JSON object per photo: image, caption, confidence, familiarity, flagged, warning")
    _similar_args(p)


def _index_args(p: argparse.ArgumentParser, data_root: str | None) -> None:
    p.add_argument("--data-root", default=data_root,
                   help="data root whose photos and reference captions are the collection to search"
                        + ("" if data_root else " (default: use the saved --index as it is)"))
    _layout_arg(p)
    p.add_argument("--index", default=similar.DEFAULT_INDEX,
                   help="saved index of the collection, built from --data-root when missing or out of date "
                        f"(default: {similar.DEFAULT_INDEX})")
    p.add_argument("--features", default=None,
                   help=f"features.p of the collection's photos, for --by image/both "
                        f"(default: {features.DEFAULT_FEATURES} if present)")


def _similar_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--similar", type=int, default=0, metavar="N",
                   help="also show up to N photos of the collection similar to each photo")
    p.add_argument("--save", default=None, metavar="PNG", help="draw the photos and their similar ones here")
    _ranking_args(p)


def _ranking_args(p: argparse.ArgumentParser) -> None:
    """How similar photos are found: the ranking, the threshold, and the collection's index."""
    p.add_argument("--threshold", type=float, default=similar.DEFAULT_THRESHOLD,
                   help=f"least similarity shown; if none reaches it, the closest below it "
                        f"(default: {similar.DEFAULT_THRESHOLD})")
    p.add_argument("--by", choices=similar.RANKINGS, default=None,
                   help="rank by caption text (TF-IDF cosine), photo features, or both "
                        "(default: both if the index has photo features, else text)")
    _index_args(p, None)


def _open_index(args: argparse.Namespace) -> similar.CaptionIndex:
    """The collection index for --similar, built and saved first if needed."""
    present = args.data_root and Path(features.DEFAULT_FEATURES).is_file()
    photo_features = args.features or (features.DEFAULT_FEATURES if present else None)
    return similar.open_index(args.index, args.data_root, photo_features)


def _weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-weights", default=None,
                   help=f"local Xception weights file "
                        f"(default: ${features.WEIGHTS_ENV}, else Keras's ImageNet download)")


def _encoder_args(p: argparse.ArgumentParser) -> None:
    _weights_arg(p)
    p.add_argument("--input-size", type=int, default=None,
                   help=f"encoder input size in pixels "
                        f"(default: {features.DEFAULT_INPUT_SIZE}, or the shipped model's)")
    p.add_argument("--batch-size", type=int, default=features.DEFAULT_BATCH_SIZE,
                   help=f"photos per encoder batch (default: {features.DEFAULT_BATCH_SIZE})")
    p.add_argument("--bfloat16", action="store_true",
                   help="run the encoder in bfloat16 on Keras: ~3x faster on CPUs with AVX-512 BF16 (see README)")
    p.add_argument("--runtime", choices=pipeline.RUNTIMES, default=None,
                   help=f"run the encoder and the shipped decoders on ONNX Runtime where their exported files are "
                        f"there (auto), always (onnx) or never (keras) (default: ${pipeline.RUNTIME_ENV}, else auto)")


def _encoder_options(args: argparse.Namespace) -> dict:
    """The options of _encoder_args, as the pipeline's keywords."""
    return {"encoder_weights": args.encoder_weights, "input_size": args.input_size, "bfloat16": args.bfloat16,
            "batch_size": args.batch_size, "runtime": args.runtime}


def cmd_prepare(args: argparse.Namespace) -> None:
    descriptions = data.prepare(args.data_root, args.out)
    print(f"{sum(map(len, descriptions.values()))} captions of {len(descriptions)} photos -> {args.out}")


def cmd_features(args: argparse.Namespace) -> None:
    if args.merge:
        result = features.merge_features(args.out)
        print(f"features of {len(result)} photos -> {args.out}")
        return
    result, out = pipeline.compute_features(args.data_root, args.out, args.limit, chunk_size=args.chunk_size,
                                            **_encoder_options(args))
    print(f"features of {len(result)} photos -> {out}" + ("; when every worker is done, run features --merge"
                                                         if out != Path(args.out) else ""))


def cmd_verify(args: argparse.Namespace) -> None:
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
    config = TrainConfig(**_given(args, TrainConfig))
    vocab, history = pipeline.run_training(args.data_root, config, descriptions=args.descriptions,
                                           features=args.features, tokenizer=args.tokenizer, out_dir=args.out_dir,
                                           plot=args.plot, resume=args.resume)
    best = min(history, key=lambda h: h["val_loss"])
    print(f"best dev loss {best['val_loss']:.4f} at epoch {best['epoch']} -> {args.out_dir}/best.keras "
          f"(vocabulary of {len(vocab)} words -> {args.tokenizer})")


def cmd_scst(args: argparse.Namespace) -> None:
    if not (args.scst and args.from_dir):
        raise CaptionError("self-critical training needs both --scst and --from RUN_DIR (a cross-entropy run)")
    unused = sorted(set(_given(args, TrainConfig)) - set(ScstConfig.__dataclass_fields__))
    if unused:
        raise CaptionError(f"--{unused[0].replace('_', '-')} does not apply to train --scst")
    config = ScstConfig(**_given(args, ScstConfig))
    history = pipeline.run_self_critical(args.data_root, args.from_dir, config, descriptions=args.descriptions,
                                         features=args.features, out_dir=args.out_dir, resume=args.resume)
    best = max(history, key=lambda h: h["dev_cider"])
    print(f"best dev CIDEr-D {best['dev_cider']:.3f} at epoch {best['epoch']} (epoch 0: {history[0]['dev_cider']:.3f}) "
          f"-> {args.out_dir}/best.keras, {args.out_dir}/tokenizer.p")


def cmd_caption(args: argparse.Namespace) -> int:
    if args.similar < 0 or (args.save and not args.similar):
        raise CaptionError("--similar takes a number of photos >= 1" if args.similar < 0
                           else "--save draws the similar photos: give --similar N too")
    index = _open_index(args) if args.similar else None
    results = pipeline.caption_photos(args.image, args.beam, args.length_penalty, model=args.model,
                                      tokenizer=args.tokenizer, **_encoder_options(args))
    first = list(itertools.islice(results, 2))  # two results tell whether each line must name its photo
    several = len(args.image) > 1 or len(first) > 1
    failed, shown = False, []
    for photo in itertools.chain(first, results):
        if photo.error:
            failed = True
            print(f"error: {photo.error}", file=sys.stderr)
            continue
        found = photo.similar(index, args.similar, args.by, args.threshold) if index else None
        if found:
            shown.append((photo.path, photo.caption, found))
        if args.json:
            print(json.dumps(photo.to_json(found)), flush=True)
        else:
            print(f"{photo.path}\t{photo.caption}" if several else photo.caption, flush=True)
            if photo.assessment.warning:
                print(f"  warning: {photo.assessment.warning}", flush=True)
            if found:
                print(found.describe(), flush=True)
    if args.save and shown:
        from . import show  # matplotlib
        show.save_figure(show.similar_figure(shown), args.save)
        print(f"figure of {len(shown)} photos and their similar ones -> {args.save}", file=sys.stderr)
    return 2 if failed else 0


def cmd_demo(args: argparse.Namespace) -> None:
    if args.beam < 2 or args.similar < 1:
        raise CaptionError("--beam takes a width >= 2 (the page also decodes greedily)" if args.beam < 2
                           else "--similar takes a number of photos >= 1")
    demo.import_gradio()  # before loading the model: without Gradio, say so at once
    index = _open_index(args) if args.data_root or Path(args.index).is_file() else None
    captioner = pipeline.CaptionPipeline(args.model, args.tokenizer, **_encoder_options(args))
    demo.serve(captioner, index, host=args.host, port=args.port, beam=args.beam, length_penalty=args.length_penalty,
               similar=args.similar, by=args.by, threshold=args.threshold)


def cmd_index(args: argparse.Namespace) -> None:
    index = _open_index(args)
    kind = "captions and photo features" if index.features is not None else "captions only"
    print(f"{len(index.captions)} captions of {len(index)} photos ({kind}) -> {args.index}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    report = pipeline.evaluate_split(args.data_root, args.split, args.beam, args.length_penalty,
                                     model=args.model, tokenizer=args.tokenizer, features=args.features,
                                     images=args.images, limit=args.limit, **_encoder_options(args))
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
    from .shipped import ship  # imports TensorFlow
    manifest = ship(args.model, args.tokenizer, args.input_size)
    print("shipped " + ", ".join(f"{name} (sha256 {digest[:12]}…)" for name, digest in manifest["sha256"].items()))


def cmd_export(args: argparse.Namespace) -> None:
    weights = features.encoder_weights(args.encoder_weights)
    if weights is None:
        raise CaptionError("random encoder weights run on Keras only: nothing to export")
    encoder = pipeline.open_encoder(weights, args.input_size, runtime="onnx")  # exported unless it is there
    print(f"encoder ({weights}, input {args.input_size}) on ONNX Runtime: {encoder.path}")
    if args.decoders:
        from .shipped import MODELS_DIR, ship_decoders
        manifest = ship_decoders()
        print(f"decoders of the shipped model -> {MODELS_DIR}: " + ", ".join(
            f"{name} (sha256 {manifest['sha256'][name][:12]}…)" for name in manifest["decoders"]))


def _captioner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None,
                   help="caption model .keras, or a training run's folder for its best.keras "
                        "(repeat for an ensemble; default: the shipped model)")
    p.add_argument("--tokenizer", default=None,
                   help="vocabulary tokenizer.p (default: the one beside --model, or the shipped one)")
    p.add_argument("--beam", type=int, default=pipeline.DEFAULT_BEAM,
                   help=f"beam width (default: {pipeline.DEFAULT_BEAM}; 1 is greedy)")
    p.add_argument("--length-penalty", type=float, default=pipeline.DEFAULT_LENGTH_PENALTY,
                   help=f"beam search: rank captions by log-probability / length**P "
                        f"(default: {pipeline.DEFAULT_LENGTH_PENALTY})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caption_generator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="clean the captions -> descriptions.txt")
    _data_args(p)
    p.add_argument("--out", default=data.DEFAULT_DESCRIPTIONS)
    p.set_defaults(run=cmd_prepare)

    p = commands.add_parser("features", help="Xception features of the photos -> features.p (resumable)")
    _data_args(p)
    _encoder_args(p)
    p.add_argument("--out", default=features.DEFAULT_FEATURES)
    p.add_argument("--chunk-size", type=int, default=features.DEFAULT_CHUNK_SIZE,
                   help=f"photos per saved chunk; a killed run resumes after the last chunk "
                        f"(default: {features.DEFAULT_CHUNK_SIZE})")
    p.add_argument("--merge", action="store_true",
                   help="merge the parts written by the workers of a TF_CONFIG cluster into --out")
    p.set_defaults(run=cmd_features)

    p = commands.add_parser("verify", help="check the photos against the original release's sha256 sums")
    _data_args(p)
    p.add_argument("--sums", required=True, help="TSV of name, size, sha256 (original_image_sha256.tsv)")
    p.set_defaults(run=cmd_verify)

    p = commands.add_parser("train", help="train the merge model (train split, early stopping on dev)")
    _data_args(p)
    p.add_argument("--descriptions", default=data.DEFAULT_DESCRIPTIONS)
    p.add_argument("--features", default=features.DEFAULT_FEATURES)
    p.add_argument("--tokenizer", default=TOKENIZER_FILE, help="where to write the vocabulary")
    p.add_argument("--out-dir", default=DEFAULT_OUT_DIR,
                   help=f"checkpoints, history and loss curve (default: {DEFAULT_OUT_DIR})")
    p.add_argument("--plot", default=DEFAULT_PLOT, help="draw the model here ('' to skip)")
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
                           metavar="{" + ",".join(LR_SCHEDULES) + "}" if name == "lr_schedule" else None,
                           help=f"(default: {value}{scst})")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("caption", help="caption photos (files or folders)")
    _caption_args(p)
    p.set_defaults(run=cmd_caption)

    p = commands.add_parser("demo", help=f"a web page to caption photos in a browser ({demo.INSTALL})")
    p.add_argument("--host", default=demo.DEFAULT_HOST,
                   help=f"address to serve on (default: {demo.DEFAULT_HOST}, this machine only; "
                        "0.0.0.0 shares the page on the network)")
    p.add_argument("--port", type=int, default=demo.DEFAULT_PORT, help=f"(default: {demo.DEFAULT_PORT})")
    _encoder_args(p)
    _captioner_args(p)
    p.add_argument("--similar", type=int, default=demo.DEFAULT_SIMILAR, metavar="N",
                   help=f"with a collection: show up to N of its photos similar to each photo "
                        f"(default: {demo.DEFAULT_SIMILAR})")
    _ranking_args(p)
    p.set_defaults(run=cmd_demo)

    p = commands.add_parser("index", help="index a collection for caption --similar -> caption_index.p")
    _index_args(p, DATA_ROOT)
    p.set_defaults(run=cmd_index)

    p = commands.add_parser("evaluate", help="caption a split and score it (MS-COCO toolkit and nltk BLEU)")
    _data_args(p)
    _encoder_args(p)
    _captioner_args(p)
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--images", default=None, help="score the photos of this folder instead of a split")
    p.add_argument("--features", default=None, help="features.p to use instead of encoding the photos")
    p.add_argument("--out", default=None, help="write the report with every caption as JSON here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("ship", help="put trained model(s), their vocabulary and their ONNX decoders in "
                                         "models/shipped/ with sha256 sums")
    p.add_argument("--model", action="append", required=True, help="best.keras of a run (repeat for an ensemble)")
    p.add_argument("--tokenizer", required=True, help="the runs' tokenizer.p")
    p.add_argument("--input-size", type=int, default=features.DEFAULT_INPUT_SIZE,
                   help=f"encoder input size the features were made with (default: {features.DEFAULT_INPUT_SIZE})")
    p.set_defaults(run=cmd_ship)

    p = commands.add_parser("export", help="export the encoder to ONNX into the cache, for captioning on ONNX Runtime")
    _weights_arg(p)
    p.add_argument("--input-size", type=int, default=features.DEFAULT_INPUT_SIZE,
                   help=f"encoder input size in pixels (default: {features.DEFAULT_INPUT_SIZE}, the shipped model's)")
    p.add_argument("--decoders", action="store_true",
                   help="also export the shipped model's decoders again into models/shipped/ (maintainers; ship "
                        "does it for new models)")
    p.set_defaults(run=cmd_export)

    args = parser.parse_args(argv)
    if args.command == "train" and cluster_position()[1] > 1:
        distribution_strategy()  # multi-worker collectives must be set up before any TensorFlow operation
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        if getattr(args, "data_root", None) is not None:
            args.data_root = open_layout(args.data_root, args.layout)  # opened once, passed down
        status = args.run(args)
    except CaptionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # a package that only some commands and options need
        package = {"sklearn": "scikit-learn"}.get(str(e.name).split(".")[0], e.name)
        print(f"error: this needs the Python package {package}, which is not installed: pip install {package} "
              f"(pip install -r requirements.txt installs all that every command needs)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
