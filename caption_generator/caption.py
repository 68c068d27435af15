"""Captioning: greedy and beam search decoding, step by step through the LSTM cell."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .backend import keras, tf

from .files import CaptionError
from .model import vocab_size_of
from .vocabulary import PAD, RESERVED, START, UNK, Vocabulary

NEVER_WRITTEN = [RESERVED.index(t) for t in (PAD, START, UNK)]  # ids the decoding distribution forbids
FORBIDDEN_LOG_PROB = -1e9  # finite: sums and masks over it never make inf - inf or 0 * inf


def next_word_log_probs(probs: tf.Tensor) -> tf.Tensor:
    """The decoding distribution: the model's next-word probabilities (..., vocab) with <pad>, <start> and
    <unk> forbidden and the rest renormalised, as log-probabilities: log p - log(1 - p_pad - p_start - p_unk).
    Decoding, SCST sampling and SCST training all use it, so they see the same distribution."""
    allowed = np.ones(probs.shape[-1], bool)
    allowed[NEVER_WRITTEN] = False
    tiny = np.finfo(np.float32).tiny  # keeps logs and their gradients finite where a probability underflows
    kept = tf.reduce_sum(tf.where(allowed, probs, 0.0), axis=-1, keepdims=True)
    log_probs = tf.math.log(tf.maximum(probs, tiny)) - tf.math.log(tf.maximum(kept, tiny))
    return tf.where(allowed, log_probs, FORBIDDEN_LOG_PROB)


class Captioner:
    """Writes captions from photo features with a trained merge model, or an ensemble of them
    (their next-word probabilities averaged). The LSTM is run one step per word through its cell,
    in a compiled function, for a whole batch of photos (and beams) at once."""

    def __init__(self, models: keras.Model | Sequence[keras.Model], vocab: Vocabulary):
        self.models = [models] if isinstance(models, keras.Model) else list(models)
        self.vocab = vocab
        for model in self.models:
            if vocab_size_of(model) != len(vocab):
                raise CaptionError(f"the model predicts over {vocab_size_of(model)} words but the vocabulary "
                                   f"has {len(vocab)}: they do not belong together")
        self.units = [int(m.get_layer("lstm").units) for m in self.models]
        self.photo_branches = [keras.Model(m.inputs[0], m.get_layer("photo_dense").output) for m in self.models]
        self._start = tf.function(self._start_fn, reduce_retracing=True)
        self._step = tf.function(self._step_fn, reduce_retracing=True)

    def _start_fn(self, features):
        return [branch(features, training=False) for branch in self.photo_branches]

    def _step_fn(self, photos, tokens, states):
        probs, new_states = 0.0, []
        for model, photo, (h, c) in zip(self.models, photos, states):
            words = keras.ops.take(model.get_layer("embedding").embeddings, tokens, axis=0)
            out, (h, c) = model.get_layer("lstm").cell(words, [h, c], training=False)
            merged = model.get_layer("decoder_dense")(photo + out)
            probs += model.get_layer("next_word")(merged)
            new_states.append((h, c))
        return next_word_log_probs(probs / len(self.models)), new_states

    def _initial(self, features: np.ndarray, copies: int):
        photos = self._start(tf.convert_to_tensor(np.repeat(features, copies, axis=0), tf.float32))
        rows = len(features) * copies
        states = [(tf.zeros((rows, u)), tf.zeros((rows, u))) for u in self.units]
        return photos, states

    def sample(self, features: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
        """Token ids of `samples` captions per photo drawn from the decoding distribution, photo by photo
        (n * samples rows): the words, the end token, then padding; at most max_length - 1 tokens."""
        features = np.asarray(features, np.float32)
        photos, states = self._initial(features, samples)
        tokens = np.full(len(features) * samples, self.vocab.start_id, np.int32)
        finished = np.zeros(len(tokens), bool)
        drawn = []
        for _ in range(self.vocab.max_length - 1):  # as long as the longest training targets
            log_probs, states = self._step(photos, tf.convert_to_tensor(tokens), states)
            seed = rng.integers(2 ** 31 - 1, size=2)
            tokens = np.array(tf.random.stateless_categorical(log_probs, 1, seed, dtype=tf.int32)[:, 0])
            tokens[finished] = self.vocab.pad_id
            drawn.append(tokens)
            finished |= tokens == self.vocab.end_id
            if finished.all():
                break
        return np.stack(drawn, axis=1)

    def greedy(self, features: np.ndarray) -> list[str]:
        """The most likely word at each step, for a batch of photo features (n, 2048)."""
        return self.beam_search(features, beam=1)

    def beam_search(self, features: np.ndarray, beam: int = 3, length_penalty: float = 1.0) -> list[str]:
        """Keep the `beam` best partial captions per photo; pick the finished one with the best
        log-probability divided by length**length_penalty. beam=1 is greedy decoding."""
        return self.scored_beam_search(features, beam, length_penalty)[0]

    def scored_beam_search(self, features: np.ndarray, beam: int = 3, length_penalty: float = 1.0
                           ) -> tuple[list[str], np.ndarray]:
        """The captions of beam_search and the mean log-probability of each one's tokens (its words and
        its end) under the decoding distribution."""
        features = np.asarray(features, np.float32)
        n, vocab = len(features), len(self.vocab)
        if n == 0:
            return [], np.zeros(0)
        photos, states = self._initial(features, beam)
        scores = np.full((n, beam), -np.inf)
        scores[:, 0] = 0.0
        sequences = np.zeros((n, beam, 0), np.int32)
        finished = np.zeros((n, beam), bool)
        tokens = np.full(n * beam, self.vocab.start_id, np.int32)
        for _ in range(self.vocab.max_length - 2):  # at most as many words as the longest training caption
            log_probs, states = self._step(photos, tf.convert_to_tensor(tokens), states)
            log_probs = log_probs.numpy().reshape(n, beam, vocab).astype(np.float64)
            log_probs[finished] = -np.inf
            log_probs[finished, self.vocab.pad_id] = 0.0  # a finished caption only grows padding, for free
            candidates = (scores[:, :, None] + log_probs).reshape(n, beam * vocab)
            top = np.argpartition(-candidates, beam - 1, axis=1)[:, :beam]  # the best, unordered: no full sort
            top = np.take_along_axis(top, np.lexsort((top, -np.take_along_axis(candidates, top, axis=1))), axis=1)
            origin, words = top // vocab, (top % vocab).astype(np.int32)
            scores = np.take_along_axis(candidates, top, axis=1)
            sequences = np.concatenate([np.take_along_axis(sequences, origin[:, :, None], axis=1),
                                        words[:, :, None]], axis=2)
            finished = np.take_along_axis(finished, origin, axis=1) | (words == self.vocab.end_id)
            rows = tf.convert_to_tensor((origin + np.arange(n)[:, None] * beam).reshape(-1))
            states = [(tf.gather(h, rows), tf.gather(c, rows)) for h, c in states]
            tokens = words.reshape(-1)
            if finished.all():
                break
        lengths = np.maximum((sequences != self.vocab.pad_id).sum(axis=2), 1)
        best = np.argmax(scores / lengths ** length_penalty, axis=1)
        mean_log_probs = scores[np.arange(n), best] / lengths[np.arange(n), best]
        return [self.vocab.decode(sequences[i, best[i]]) for i in range(n)], mean_log_probs

    def caption_features(self, features: np.ndarray, beam: int = 1, length_penalty: float = 1.0,
                         batch_size: int = 256) -> list[str]:
        """Captions for many photo features, decoded in batches."""
        captions: list[str] = []
        for start in range(0, len(features), batch_size):
            captions += self.beam_search(features[start:start + batch_size], beam, length_penalty)
        return captions


def caption_encoded(encoded: Iterable[tuple[Path, np.ndarray | None, str | None]], captioner: Captioner,
                    beam: int = 1, length_penalty: float = 1.0, decode_batch: int = 64
                    ) -> Iterator[tuple[Path, np.ndarray | None, str | None, str | None]]:
    """Caption the output of features.encode in batches: (path, features, caption, None) per photo in
    order, or (path, None, None, error) for one that could not be read."""
    pending: list[tuple[Path, np.ndarray | None, str | None]] = []

    def flush():
        good = [vector for _, vector, error in pending if error is None]
        captions = iter(captioner.beam_search(np.stack(good), beam, length_penalty) if good else [])
        for path, vector, error in pending:
            yield (path, None, None, error) if error else (path, vector, next(captions), None)
        pending.clear()

    for item in encoded:
        pending.append(item)
        if len(pending) >= decode_batch:
            yield from flush()
    yield from flush()


MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "shipped"  # training never writes here
MANIFEST = MODELS_DIR / "manifest.json"


def shipped_files() -> tuple[list[Path], Path, dict]:
    """The shipped model files, vocabulary and manifest, after checking their sha256 sums."""
    import json

    from .files import sha256_file

    if not MANIFEST.is_file():
        raise CaptionError(f"no shipped model in {MODELS_DIR}; pass --model and --tokenizer")
    manifest = json.loads(MANIFEST.read_text())
    for name, expected in manifest["sha256"].items():
        path = MODELS_DIR / name
        if not path.is_file():
            raise CaptionError(f"{path}: shipped file missing (is this a full clone? try git lfs/checkout)")
        if sha256_file(path) != expected:
            raise CaptionError(f"{path}: sha256 differs from {MANIFEST.name}; the file is damaged or replaced")
    return [MODELS_DIR / m for m in manifest["models"]], MODELS_DIR / manifest["tokenizer"], manifest


def load_captioner(model_paths: Sequence[str | os.PathLike] | None = None,
                   tokenizer_path: str | os.PathLike | None = None) -> tuple[Captioner, int]:
    """A Captioner from model file(s) and a vocabulary, and the encoder input size it expects.

    A model path may be a training run's folder, meaning its best.keras; the vocabulary defaults to the
    tokenizer.p beside the first model. Without models: the shipped ones, after checking their sha256 sums."""
    from .features import DEFAULT_INPUT_SIZE
    from .model import load_model

    input_size = DEFAULT_INPUT_SIZE
    if not model_paths:
        if tokenizer_path:
            raise CaptionError("--tokenizer without --model: give the model the vocabulary belongs to")
        model_paths, tokenizer_path, manifest = shipped_files()
        input_size = int(manifest.get("input_size", DEFAULT_INPUT_SIZE))
    model_paths = [Path(p) / "best.keras" if Path(p).is_dir() else Path(p) for p in model_paths]
    vocab = Vocabulary.load(tokenizer_path or model_paths[0].parent / "tokenizer.p")
    return Captioner([load_model(p) for p in model_paths], vocab), input_size


def ship(model_paths: Sequence[str | os.PathLike], tokenizer_path: str | os.PathLike, input_size: int,
         notes: dict | None = None, models_dir: Path = MODELS_DIR) -> dict:
    """Copy trained model(s) (weights and architecture only, no optimizer state) and their vocabulary
    into `models_dir` with a manifest of sha256 sums, which the default captioning path checks."""
    import json

    from .files import atomic_path, sha256_file, write_text
    from .model import load_model

    vocab = Vocabulary.load(tokenizer_path)
    models = [load_model(p) for p in model_paths]
    Captioner(models, vocab)  # refuses a model and vocabulary that don't belong together
    names = ["caption_model.keras"] if len(models) == 1 else [f"caption_model_{i + 1}.keras" for i in range(len(models))]
    for model, name in zip(models, names):
        with atomic_path(models_dir / name) as tmp:
            model.save(tmp)  # loaded with compile=False: no optimizer state is saved
    vocab.save(models_dir / "tokenizer.p")
    files = [*names, "tokenizer.p"]
    manifest = {"models": names, "tokenizer": "tokenizer.p", "input_size": input_size,
                "sha256": {f: sha256_file(models_dir / f) for f in files}, **(notes or {})}
    write_text(models_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest
