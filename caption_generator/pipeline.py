"""The stages chained as users run them, one call each: caption photos, evaluate a split, compute a data
root's features, train a model (and fine-tune it self-critically). The command line and the notebook call
these; TensorFlow is imported only when one of them runs, so `import caption_generator` stays light.

    from caption_generator import caption_photos
    for photo in caption_photos(["examples/"], beam=5):
        print(photo.path, photo.caption)
"""
from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from .confidence import Assessment, assess
from .config import DEFAULT_OUT_DIR, DEFAULT_PLOT, ScstConfig, TrainConfig
from .data import DEFAULT_DESCRIPTIONS
from .errors import CaptionError
from .features import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_FEATURES, DEFAULT_INPUT_SIZE
from .layouts import Layout, find_photos, list_images, open_layout
from .similar import DEFAULT_THRESHOLD, CaptionIndex, Similar
from .vocabulary import TOKENIZER_FILE

if TYPE_CHECKING:
    from .confidence import Calibration
    from .decoding import Decoder
    from .features import Encoder
    from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "keras")  # where the encoder and the decoders run: see open_encoder, load_captioner
RUNTIME_ENV = "CAPTION_GENERATOR_RUNTIME"
DEFAULT_BEAM = 5  # the best on dev for the shipped ensemble (models/shipped/eval/dev_tuning.json)
DEFAULT_LENGTH_PENALTY = 1.0
DECODE_BATCH = 64  # photos decoded together as they come out of the encoder

Paths = Sequence[str | os.PathLike] | str | os.PathLike


@dataclass
class Captioned:
    """A photo and its caption, or the error that kept it from being captioned; `features` are its
    Xception features (for a similar-photos query); `assessment` how far to trust the caption: its
    confidence, the photo's familiarity, and whether it is flagged (confidence.Assessment)."""

    path: Path
    caption: str | None = None
    error: str | None = None
    features: np.ndarray | None = None
    assessment: Assessment | None = None

    def to_json(self, similar: Similar | None = None) -> dict:
        """The photo as `caption --json` prints it: its caption, its assessment and its similar photos (or
        its error)."""
        if self.error:
            return {"image": str(self.path), "error": self.error}
        return {"image": str(self.path), "caption": self.caption, **self.assessment.to_json(),
                **({"similar": similar.to_json()} if similar else {})}

    def similar(self, index: CaptionIndex, n: int, by: str | None = None, threshold: float = DEFAULT_THRESHOLD
                ) -> Similar:
        """Up to n photos of the collection like this one, ranked by its caption and features (`by`: the
        index's default ranking), this photo left out if the collection has it: as `caption --similar`."""
        return index.query(self.caption, self.features, n, by or index.default_by(), threshold, exclude=self.path.name)


def _listed(paths: Paths | None) -> list[str | os.PathLike]:
    """One path or several, as a list (empty for None)."""
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths or [])


def _runtime(runtime: str | None) -> str:
    """The runtime asked for: `runtime`, else $CAPTION_GENERATOR_RUNTIME, else "auto"."""
    chosen = runtime or os.environ.get(RUNTIME_ENV) or "auto"
    if chosen not in RUNTIMES:
        raise CaptionError(f"unknown runtime {chosen!r} (from --runtime or ${RUNTIME_ENV}): "
                           f"choose {', '.join(RUNTIMES)}")
    return chosen


def load_captioner(model: Paths | None = None, tokenizer: str | os.PathLike | None = None,
                   runtime: str | None = None) -> tuple[Decoder, int]:
    """A captioner from model file(s) and a vocabulary, and the encoder input size it expects.

    A model path may be a training run's folder, meaning its best.keras; the vocabulary defaults to the
    tokenizer.p beside the first model. Without models: the shipped ones, after checking the sha256 sums of
    the files used, with their confidence calibration; on ONNX Runtime when its decoders are shipped and
    onnxruntime is installed (`runtime` "auto", the default), or always ("onnx"), or never ("keras")."""
    from . import onnx_runtime
    from .shipped import shipped_calibration, shipped_file, shipped_manifest
    from .vocabulary import Vocabulary

    runtime, model_paths = _runtime(runtime), _listed(model)
    if model_paths and runtime == "onnx":
        raise CaptionError("ONNX decoders ship with the shipped model only: without --model, or with the "
                           "runtime auto or keras")
    if not model_paths:
        if tokenizer:
            raise CaptionError("--tokenizer without --model: give the model the vocabulary belongs to")
        manifest = shipped_manifest()
        input_size = int(manifest.get("input_size", DEFAULT_INPUT_SIZE))
        vocab = Vocabulary.load(shipped_file(manifest, manifest["tokenizer"]))
        calibration = shipped_calibration(manifest)
        onnx = runtime != "keras" and "decoders" in manifest and onnx_runtime.installed()
        if runtime == "onnx" and not onnx:
            raise CaptionError("the runtime onnx needs onnxruntime (pip install -r requirements-inference.txt) and "
                               "the shipped ONNX decoders (python -m caption_generator export --decoders)")
        if onnx:
            start, step = (shipped_file(manifest, name) for name in manifest["decoders"])
            return onnx_runtime.OnnxCaptioner(start, step, vocab, calibration), input_size
        model_paths = [shipped_file(manifest, name) for name in manifest["models"]]
        return _keras_captioner(model_paths, vocab, calibration), input_size
    model_paths = [Path(p) / "best.keras" if Path(p).is_dir() else Path(p) for p in model_paths]
    vocab = Vocabulary.load(tokenizer or model_paths[0].parent / TOKENIZER_FILE)
    return _keras_captioner(model_paths, vocab), DEFAULT_INPUT_SIZE


def _keras_captioner(model_paths: Sequence[Path], vocab: Vocabulary, calibration: Calibration | None = None
                     ) -> Decoder:
    """A Captioner (on Keras) of .keras model files."""
    from .caption import Captioner
    from .model import load_model

    return Captioner([load_model(p) for p in model_paths], vocab, calibration)


def open_encoder(weights: str | None, input_size: int, bfloat16: bool = False, runtime: str | None = None
                 ) -> Encoder:
    """The Xception encoder of these weights (features.encoder_weights) and input size.

    With `runtime` "auto" (the default) it runs on ONNX Runtime if onnxruntime is installed, the weights are
    ImageNet's (a file or Keras's download) and the encoder is float32: its export in the cache is used, or
    made first if TensorFlow and tf2onnx are there (once: about half a minute). Else it runs on Keras.
    "onnx" runs it on ONNX Runtime or says why it cannot; "keras" always runs it on Keras."""
    from . import onnx_runtime
    from .export import can_export, export_encoder
    from .features import build_encoder

    runtime = _runtime(runtime)
    unfit = ("--bfloat16 runs on Keras only" if bfloat16 else "random weights run on Keras only" if weights is None
             else None if onnx_runtime.installed() else "onnxruntime is not installed")
    if runtime == "keras" or (runtime == "auto" and unfit):
        return build_encoder(weights, input_size, bfloat16)
    if unfit:
        raise CaptionError(f"the encoder cannot run on ONNX Runtime: {unfit}")
    key = onnx_runtime.weights_key(weights)
    path = onnx_runtime.encoder_path(key, input_size)
    if path.is_file():
        try:
            return onnx_runtime.OnnxEncoder(path, key, input_size)
        except CaptionError as e:
            if not can_export():
                raise CaptionError(f"{e}; export it again (python -m caption_generator export)") from None
            log.warning("%s; exporting it again", e)
    elif not can_export():
        if runtime == "auto" and importlib.util.find_spec("tensorflow"):
            return build_encoder(weights, input_size)
        raise CaptionError(f"no exported encoder for these weights at input size {input_size} in "
                           f"{onnx_runtime.cache_dir()}, and no TensorFlow and tf2onnx to export it: run "
                           f"python -m caption_generator export where they are installed (pip install -r "
                           f"requirements.txt), with the same weights, and copy the cache folder here")
    log.info("exporting the encoder to ONNX once (about half a minute) -> %s", path)
    try:
        return onnx_runtime.OnnxEncoder(export_encoder(weights, input_size), key, input_size)
    except OSError as e:
        raise CaptionError(f"cannot write the exported encoder into {path.parent} ({e.strerror}): set "
                           f"${onnx_runtime.CACHE_ENV} to a folder of yours") from None


class CaptionPipeline:
    """The encoder and the captioner, loaded once; call it with photos as often as needed (a server, a
    notebook). Options as for caption_photos.

        captioner = CaptionPipeline()          # the shipped model
        for photo in captioner(["examples/"]):
            print(photo.path, photo.caption)
    """

    def __init__(self, model: Paths | None = None, tokenizer: str | os.PathLike | None = None, *,
                 encoder_weights: str | os.PathLike | None = None, input_size: int | None = None,
                 bfloat16: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, runtime: str | None = None):
        from .features import encoder_weights as weights_file

        weights = weights_file(encoder_weights)
        self.captioner, model_input_size = load_captioner(model, tokenizer, runtime)
        self.encoder = open_encoder(weights, input_size or model_input_size, bfloat16, runtime)
        self.batch_size = batch_size

    def __call__(self, photos: Paths, beam: int = DEFAULT_BEAM, length_penalty: float = DEFAULT_LENGTH_PENALTY,
                 progress: bool | None = None) -> Iterator[Captioned]:
        """Caption photo files and the photos of folders, yielding each in order as it is done; an input
        that is no photo, or cannot be read, gives a Captioned with its error."""
        yield from self._caption(*find_photos(_listed(photos)), beam, length_penalty, progress)

    def _caption(self, paths: list[Path], errors: list[tuple[Path, str]], beam: int, length_penalty: float,
                 progress: bool | None) -> Iterator[Captioned]:
        """__call__ on photos already listed by layouts.find_photos (the errors first, then the photos)."""
        from .features import encode

        for path, error in errors:
            yield Captioned(path, error=error)
        if paths:
            encoded = encode(paths, self.encoder, batch_size=self.batch_size,
                             progress=len(paths) > 20 if progress is None else progress)
            yield from _caption_encoded(encoded, self.captioner, beam, length_penalty)


def caption_photos(photos: Paths, beam: int = DEFAULT_BEAM, length_penalty: float = DEFAULT_LENGTH_PENALTY, *,
                   model: Paths | None = None, tokenizer: str | os.PathLike | None = None,
                   encoder_weights: str | os.PathLike | None = None, input_size: int | None = None,
                   bfloat16: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool | None = None,
                   runtime: str | None = None) -> Iterator[Captioned]:
    """Caption photo files and the photos of folders, yielding each in order as it is done.

    `model` and `tokenizer`: as load_captioner (default: the shipped model). `beam` 1 is greedy decoding;
    wider beams rank captions by log-probability / length**length_penalty. `encoder_weights`: a local
    Xception weights file (default: $XCEPTION_WEIGHTS, else Keras's ImageNet download); `input_size`:
    the encoder's (default: the model's). An input that is no photo, or a photo that cannot be read,
    gives a Captioned with its error; the rest are still captioned. `progress`: a progress bar
    (default: for more than 20 photos). `runtime`: "auto" (the default, or $CAPTION_GENERATOR_RUNTIME) runs
    the encoder and the shipped decoders on ONNX Runtime where their exported files are there (see
    open_encoder and load_captioner), "onnx" always, "keras" never. To caption again and again, load a
    CaptionPipeline once.
    """
    paths, errors = find_photos(_listed(photos))
    if not paths:  # nothing to caption: no model to load
        yield from (Captioned(path, error=error) for path, error in errors)
        return
    pipeline = CaptionPipeline(model, tokenizer, encoder_weights=encoder_weights, input_size=input_size,
                               bfloat16=bfloat16, batch_size=batch_size, runtime=runtime)
    yield from pipeline._caption(paths, errors, beam, length_penalty, progress)


def _caption_encoded(encoded: Iterable[tuple[Path, np.ndarray | None, str | None]], captioner: Decoder,
                     beam: int, length_penalty: float) -> Iterator[Captioned]:
    """Caption the output of features.encode in batches of DECODE_BATCH photos, in order."""
    pending: list[tuple[Path, np.ndarray | None, str | None]] = []

    def flush() -> Iterator[Captioned]:
        good = [vector for _, vector, error in pending if error is None]
        done: Iterator[tuple[str, Assessment]] = iter([])
        if good:
            features = np.stack(good)
            captions, mean_log_probs = captioner.scored_beam_search(features, beam, length_penalty)
            done = iter(zip(captions, assess(mean_log_probs, features, captioner.calibration, beam, length_penalty)))
        for path, vector, error in pending:
            if error:
                yield Captioned(path, error=error)
            else:
                caption, assessment = next(done)
                yield Captioned(path, caption, features=vector, assessment=assessment)
        pending.clear()

    for item in encoded:
        pending.append(item)
        if len(pending) >= DECODE_BATCH:
            yield from flush()
    yield from flush()


def evaluate_split(data_root: str | os.PathLike | Layout, split: str, beam: int = DEFAULT_BEAM,
                   length_penalty: float = DEFAULT_LENGTH_PENALTY, *, model: Paths | None = None,
                   tokenizer: str | os.PathLike | None = None, features: str | os.PathLike | None = None,
                   images: str | os.PathLike | None = None, limit: int | None = None,
                   encoder_weights: str | os.PathLike | None = None, input_size: int | None = None,
                   bfloat16: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, runtime: str | None = None) -> dict:
    """Caption a split's photos (the first `limit`) and score them against the data root's references
    (MS-COCO toolkit and nltk's BLEU); with `images`, the photos of that folder that have references.

    The photos are encoded unless `features` names a features.p that has them. Model, encoder and runtime
    options as for caption_photos. Returns a JSON-ready report: the settings, the scores and every caption.
    """
    from .data import clean_descriptions
    from .evaluate import evaluate
    from .features import extract_features, load_features
    from .features import encoder_weights as weights_file

    layout = open_layout(data_root)
    captioner, model_input_size = load_captioner(model, tokenizer, runtime)
    raw = layout.captions()
    clean = clean_descriptions(raw)
    if images:
        paths = [p for p in list_images(images) if p.name in raw]
        if not paths:
            raise CaptionError(f"{images}: no photo with a reference caption")
    else:
        paths = [layout.photo_path(n) for n in layout.split(split)[:limit]]
    if features:
        vectors = load_features(features)
    else:
        encoder = open_encoder(weights_file(encoder_weights), input_size or model_input_size, bfloat16, runtime)
        vectors = extract_features(paths, encoder, batch_size=batch_size)
    names = [p.name for p in paths if p.name in vectors]
    report = evaluate(captioner, vectors, names, raw, clean, beam, length_penalty)
    report["split"] = f"images in {images}" if images else split
    return report


def compute_features(data_root: str | os.PathLike | Layout, out: str | os.PathLike = DEFAULT_FEATURES,
                     limit: int | None = None, *, encoder_weights: str | os.PathLike | None = None,
                     input_size: int | None = None, bfloat16: bool = False,
                     batch_size: int = DEFAULT_BATCH_SIZE, chunk_size: int = DEFAULT_CHUNK_SIZE,
                     runtime: str | None = None) -> tuple[dict[str, np.ndarray], Path]:
    """The Xception features of a data root's photos (with `limit`, the first N of each split), written to
    `out` and resumable; encoder and runtime options as for caption_photos. Under $TF_CONFIG, this worker encodes its
    share into its part file beside `out` (merge the parts with features.merge_features). Returns the
    features and the file written."""
    from .cluster import cluster_position
    from .data import photo_paths
    from .features import extract_features, part_path, shard
    from .features import encoder_weights as weights_file

    index, count = cluster_position()
    paths = shard(photo_paths(open_layout(data_root), limit), index, count)
    written = Path(out) if count == 1 else part_path(out, index, count)
    encoder = open_encoder(weights_file(encoder_weights), input_size or DEFAULT_INPUT_SIZE, bfloat16, runtime)
    return extract_features(paths, encoder, out=written, batch_size=batch_size, chunk_size=chunk_size), written


def run_training(data_root: str | os.PathLike | Layout, config: TrainConfig, *,
                 descriptions: str | os.PathLike = DEFAULT_DESCRIPTIONS,
                 features: str | os.PathLike = DEFAULT_FEATURES, tokenizer: str | os.PathLike = TOKENIZER_FILE,
                 out_dir: str | os.PathLike = DEFAULT_OUT_DIR, plot: str | os.PathLike | None = DEFAULT_PLOT,
                 resume: bool = False) -> tuple[Vocabulary, list[dict]]:
    """Train the merge model on the train split of descriptions.txt and features.p, stopping early on dev:
    the vocabulary -> `tokenizer`, the model's drawing -> `plot` (None: none), checkpoints, history and
    loss curve -> `out_dir`. With several workers, only the chief writes. Returns the vocabulary and history."""
    from .cluster import cluster_position
    from .data import load_splits
    from .features import load_features
    from .model import build_model_from
    from .model import plot as draw
    from .train import train_model
    from .vocabulary import Vocabulary

    splits = load_splits(open_layout(data_root), descriptions, config.limit)
    photo_features = load_features(features)
    vocab = Vocabulary.build((c for texts in splits["train"].values() for c in texts), config.min_count)
    model = build_model_from(config, len(vocab))
    chief = cluster_position()[0] == 0  # with several workers, only the chief writes
    if plot and chief:
        draw(model, plot)
    _, history = train_model(model, splits, vocab, photo_features, out_dir, config, resume, verbose=2)
    if chief:
        vocab.save(tokenizer)
    return vocab, history


def run_self_critical(data_root: str | os.PathLike | Layout, from_dir: str | os.PathLike, config: ScstConfig, *,
                      descriptions: str | os.PathLike = DEFAULT_DESCRIPTIONS,
                      features: str | os.PathLike = DEFAULT_FEATURES, out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
                      resume: bool = False) -> list[dict]:
    """Self-critical training (CIDEr-D reward) of the cross-entropy run in `from_dir` on the train split of
    descriptions.txt and features.p (scst.fine_tune): checkpoints, history and scst.png -> `out_dir`.
    Returns the history."""
    from .data import load_splits
    from .features import load_features
    from .scst import fine_tune

    splits = load_splits(open_layout(data_root), descriptions, config.limit)
    return fine_tune(from_dir, splits, load_features(features), out_dir, config, resume)
