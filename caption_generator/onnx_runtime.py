"""Inference on ONNX Runtime, without TensorFlow: the exported encoder (Xception, in a cache folder, keyed by
its weights) and the exported decoders (the step model of caption.step_model and the photo branches, shipped
beside the model). export.py writes them; each carries metadata saying what it is, checked on loading."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .decoding import Decoder, step_inputs
from .errors import CaptionError
from .files import sha256_file, write_text
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    from .confidence import Calibration

CACHE_ENV = "CAPTION_GENERATOR_CACHE"  # the cache folder (default: $XDG_CACHE_HOME or ~/.cache, /caption_generator)
IMAGENET = "imagenet"  # Keras's own ImageNet weights: fixed by Keras, so they are their own cache key
ENCODER, DECODER_START, DECODER_STEP = "encoder", "decoder_start", "decoder_step"  # the kinds of file we export
DECODER_FILES = {DECODER_START: "decoder_start.onnx", DECODER_STEP: "decoder_step.onnx"}  # beside the model
# metadata keys of our ONNX files:
KIND = "caption_generator.kind"
WEIGHTS = "caption_generator.weights"  # the encoder's weights key (weights_key)
INPUT_SIZE = "caption_generator.input_size"
FEATURES = "caption_generator.features"  # the encoder's identity as features.encoder_identity gives it, as JSON
VOCABULARY = "caption_generator.vocabulary"  # a decoder's vocabulary size


def installed() -> bool:
    """Whether onnxruntime can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


def cache_dir() -> Path:
    """Where exported encoders are kept: $CAPTION_GENERATOR_CACHE, else caption_generator/ in the user's cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "caption_generator"


def weights_key(weights: str) -> str:
    """The cache key of encoder weights: "imagenet" for Keras's download, else the weights file's sha256.
    The sum is remembered by the file's path, size, times and inode, so an unchanged file is hashed once."""
    if weights == IMAGENET:
        return IMAGENET
    path = Path(weights).resolve()
    status = path.stat()
    stamp = [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]
    sums = cache_dir() / "weights_sha256.json"
    try:
        known = json.loads(sums.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    known[str(path)] = {"stamp": stamp, "sha256": digest}
    try:
        write_text(sums, json.dumps(known, indent=1) + "\n")
    except OSError:  # a read-only cache: hash again next time
        pass
    return digest


def encoder_path(key: str, input_size: int) -> Path:
    """Where the encoder exported with the weights of this key, at this input size, is kept."""
    return cache_dir() / f"xception-{key[:16]}-{input_size}.onnx"


def open_session(path: Path, kind: str, expected: dict[str, str]):
    """An ONNX Runtime session of a file we exported, after checking that its metadata says `kind` and the
    `expected` values; one CaptionError for a missing, damaged or foreign file."""
    import onnxruntime

    if not path.is_file():
        raise CaptionError(f"{path}: no such ONNX file")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its notices at loading are not for users
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for a damaged file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CaptionError(f"{path}: not a readable ONNX model ({first})") from None
    found = session.get_modelmeta().custom_metadata_map
    for key, value in {KIND: kind, **expected}.items():
        if found.get(key) != value:
            raise CaptionError(f"{path}: not the exported {kind} expected "
                               f"({key.split('.')[-1]} {found.get(key)!r} where {value!r} was expected)")
    return session


class OnnxEncoder:
    """The exported Xception on ONNX Runtime: photos (n, size, size, 3) scaled to [-1, 1] -> features (n, 2048)."""

    def __init__(self, path: Path, key: str, input_size: int):
        self.path, self.input_size = path, input_size
        self.session = open_session(path, ENCODER, {WEIGHTS: key, INPUT_SIZE: str(input_size)})
        self.identity = json.loads(self.session.get_modelmeta().custom_metadata_map[FEATURES])
        self._input = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: np.asarray(images, np.float32)})[0]


class OnnxCaptioner(Decoder):
    """Writes captions with the exported decoders (the photo branches `start` and the step model `step`) on
    ONNX Runtime; the search is decoding.Decoder's, as on Keras."""

    def __init__(self, start: Path, step: Path, vocab: Vocabulary, calibration: Calibration | None = None):
        expected = {VOCABULARY: str(len(vocab))}
        self._start = open_session(start, DECODER_START, expected)
        self._step = open_session(step, DECODER_STEP, expected)
        models = len(self._start.get_outputs())
        self._step_inputs = step_inputs(models)
        shapes = {i.name: i.shape for i in self._step.get_inputs()}
        if sorted(shapes) != sorted(self._step_inputs):
            raise CaptionError(f"{start}, {step}: not the decoders of one ensemble; export them again")
        super().__init__(vocab, [int(shapes[f"h_{i}"][1]) for i in range(models)], calibration)

    def _photo_vectors(self, features: np.ndarray) -> list[np.ndarray]:
        return self._start.run(None, {self._start.get_inputs()[0].name: features})

    def _run_step(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self._step.run(None, dict(zip(self._step_inputs, inputs)))
