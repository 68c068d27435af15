"""Captioning: greedy and beam search decoding, step by step through the LSTM cell."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .backend import keras, tf

from .errors import CaptionError
from .model import vocab_size_of
from .vocabulary import PAD, RESERVED, START, UNK, Vocabulary

if TYPE_CHECKING:
    from .confidence import Calibration

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
    in a compiled function, for a whole batch of photos (and beams) at once. `calibration`: the
    thresholds that flag its captions (confidence.Calibration), if it has any."""

    def __init__(self, models: keras.Model | Sequence[keras.Model], vocab: Vocabulary,
                 calibration: Calibration | None = None):
        self.models = [models] if isinstance(models, keras.Model) else list(models)
        self.vocab = vocab
        self.calibration = calibration
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
