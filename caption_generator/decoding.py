"""Greedy and beam search decoding in numpy, around a decoder's per-word step: the one search that both
runtimes share (caption.Captioner on Keras, onnx_runtime.OnnxCaptioner on ONNX Runtime). TensorFlow-free."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from .vocabulary import Vocabulary

if TYPE_CHECKING:
    from .confidence import Calibration

States = list[tuple[np.ndarray, np.ndarray]]  # each model's LSTM state (h, c), one row per caption


def step_inputs(models: int) -> list[str]:
    """The names of the step model's inputs, in order: tokens, then photo_i, h_i, c_i of each model."""
    return ["tokens"] + [f"{name}_{i}" for i in range(models) for name in ("photo", "h", "c")]


class Decoder(ABC):
    """Writes captions from photo features with a merge model, or an ensemble of them (their next-word
    probabilities averaged), one word per step for a whole batch of photos (and beams) at once.

    A runtime gives two functions, the same for both: `_photo_vectors` (each model's photo branch) and
    `_run_step` (the step model of caption.step_model: inputs tokens, then photo, h, c of each model;
    outputs the decoding distribution's log-probabilities, then h, c of each model). `units`: each model's
    LSTM size. `calibration`: the thresholds that flag its captions (confidence.Calibration), if it has any."""

    def __init__(self, vocab: Vocabulary, units: list[int], calibration: Calibration | None = None):
        self.vocab, self.units, self.calibration = vocab, units, calibration

    @abstractmethod
    def _photo_vectors(self, features: np.ndarray) -> list[np.ndarray]:
        """Each model's photo vector (rows, units) of photo features (rows, 2048)."""

    @abstractmethod
    def _run_step(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One step of the step model: [tokens, photo_0, h_0, c_0, ...] -> [log_probs, h_0, c_0, ...]."""

    def initial(self, features: np.ndarray, copies: int) -> tuple[list[np.ndarray], States]:
        """The photo vectors and empty LSTM states of `copies` rows per photo (photo by photo)."""
        photos = self._photo_vectors(np.repeat(np.asarray(features, np.float32), copies, axis=0))
        rows = len(features) * copies
        return photos, [(np.zeros((rows, u), np.float32), np.zeros((rows, u), np.float32)) for u in self.units]

    def step(self, photos: list[np.ndarray], tokens: np.ndarray, states: States) -> tuple[np.ndarray, States]:
        """The decoding distribution's log-probabilities (rows, vocab) of the word after `tokens`, and the new
        LSTM states: <pad>, <start> and <unk> forbidden, as caption.next_word_log_probs says."""
        inputs = [np.asarray(tokens, np.int32)] + [a for photo, (h, c) in zip(photos, states) for a in (photo, h, c)]
        outputs = self._run_step(inputs)
        return outputs[0], list(zip(outputs[1::2], outputs[2::2]))

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
        photos, states = self.initial(features, beam)
        scores = np.full((n, beam), -np.inf)
        scores[:, 0] = 0.0
        sequences = np.zeros((n, beam, 0), np.int32)
        finished = np.zeros((n, beam), bool)
        tokens = np.full(n * beam, self.vocab.start_id, np.int32)
        for _ in range(self.vocab.max_length - 2):  # at most as many words as the longest training caption
            log_probs, states = self.step(photos, tokens, states)
            log_probs = log_probs.reshape(n, beam, vocab).astype(np.float64)
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
            rows = (origin + np.arange(n)[:, None] * beam).reshape(-1)
            states = [(h[rows], c[rows]) for h, c in states]
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
