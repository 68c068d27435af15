"""Captioning on Keras: the decoding step of a merge model (or an ensemble) as a Keras model of its own,
run by the shared numpy search of decoding.Decoder, and sampling for self-critical training."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .backend import keras, tf

from .decoding import Decoder, step_inputs
from .errors import CaptionError
from .model import next_word_probs, vocab_size_of
from .vocabulary import PAD, RESERVED, START, UNK, Vocabulary

if TYPE_CHECKING:
    from .confidence import Calibration

NEVER_WRITTEN = [RESERVED.index(t) for t in (PAD, START, UNK)]  # ids the decoding distribution forbids
FORBIDDEN_LOG_PROB = -1e9  # finite: sums and masks over it never make inf - inf or 0 * inf


def next_word_log_probs(probs):
    """The decoding distribution: the model's next-word probabilities (..., vocab) with <pad>, <start> and
    <unk> forbidden and the rest renormalised, as log-probabilities: log p - log(1 - p_pad - p_start - p_unk).
    Decoding, SCST sampling and SCST training all use it, so they see the same distribution."""
    ops = keras.ops
    allowed = np.ones(probs.shape[-1], bool)
    allowed[NEVER_WRITTEN] = False
    tiny = np.finfo(np.float32).tiny  # keeps logs and their gradients finite where a probability underflows
    kept = ops.sum(ops.where(allowed, probs, 0.0), axis=-1, keepdims=True)
    log_probs = ops.log(ops.maximum(probs, tiny)) - ops.log(ops.maximum(kept, tiny))
    return ops.where(allowed, log_probs, FORBIDDEN_LOG_PROB)


def _model_step(model: keras.Model, index: int) -> keras.Model:
    """One merge model's step: [tokens, photo, h, c] -> [next-word probabilities, h, c], through its
    embedding, LSTM cell and dense layers (the layers shared with the model, so it follows its training)."""
    units = int(model.get_layer("lstm").units)
    tokens = keras.Input((), dtype="int32", name="tokens")
    photo, h, c = (keras.Input((units,), name=name) for name in ("photo", "h", "c"))
    words = keras.ops.take(model.get_layer("embedding").embeddings, tokens, axis=0)
    out, (new_h, new_c) = model.get_layer("lstm").cell(words, [h, c], training=False)
    probs = next_word_probs(model, model.get_layer("decoder_dense")(photo + out))
    return keras.Model([tokens, photo, h, c], [probs, new_h, new_c], name=f"step_{index}")


def step_model(models: Sequence[keras.Model]) -> keras.Model:
    """The decoding step of an ensemble: inputs tokens (rows,), then photo_i, h_i, c_i of each model (named by
    decoding.step_inputs); outputs the decoding distribution's log-probabilities of the models' mean next-word
    probabilities (rows, vocab), then h_i, c_i. Keras runs it, and the ONNX decoder is it, exported
    (export.export_decoders)."""
    names = step_inputs(len(models))
    tokens = keras.Input((), dtype="int32", name=names[0])
    inputs, probs, states = [tokens], [], []
    for i, model in enumerate(models):
        units = int(model.get_layer("lstm").units)
        photo, h, c = (keras.Input((units,), name=name) for name in names[1 + 3 * i:4 + 3 * i])
        p, h_next, c_next = _model_step(model, i)([tokens, photo, h, c])
        inputs += [photo, h, c]
        probs.append(p)
        states += [h_next, c_next]
    mean = sum(probs[1:], probs[0]) / len(models)
    return keras.Model(inputs, [next_word_log_probs(mean), *states], name="decoder_step")


def photo_model(models: Sequence[keras.Model]) -> keras.Model:
    """Each model's photo branch: features (rows, 2048) -> [photo_i (rows, units)]."""
    features = keras.Input(tuple(models[0].inputs[0].shape[1:]), name="features")
    branches = [keras.Model(m.inputs[0], m.get_layer("photo_dense").output, name=f"photo_{i}")(features)
                for i, m in enumerate(models)]
    return keras.Model(features, branches, name="decoder_start")


class Captioner(Decoder):
    """Writes captions from photo features with trained merge model(s) on Keras, the step compiled
    (decoding.Decoder has the search)."""

    def __init__(self, models: keras.Model | Sequence[keras.Model], vocab: Vocabulary,
                 calibration: Calibration | None = None):
        self.models = [models] if isinstance(models, keras.Model) else list(models)
        for model in self.models:
            if vocab_size_of(model) != len(vocab):
                raise CaptionError(f"the model predicts over {vocab_size_of(model)} words but the vocabulary "
                                   f"has {len(vocab)}: they do not belong together")
        super().__init__(vocab, [int(m.get_layer("lstm").units) for m in self.models], calibration)
        self.photo_model, self.step_model = photo_model(self.models), step_model(self.models)
        self._photos = tf.function(lambda x: self.photo_model(x, training=False), reduce_retracing=True)
        self._step = tf.function(lambda inputs: self.step_model(inputs, training=False), reduce_retracing=True)

    def _photo_vectors(self, features: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(v) for v in keras.tree.flatten(self._photos(tf.convert_to_tensor(features)))]  # one or more

    def _run_step(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(t) for t in self._step([tf.convert_to_tensor(a) for a in inputs])]

    def sample(self, features: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
        """Token ids of `samples` captions per photo drawn from the decoding distribution, photo by photo
        (n * samples rows): the words, the end token, then padding; at most max_length - 1 tokens."""
        photos, states = self.initial(features, samples)
        tokens = np.full(len(features) * samples, self.vocab.start_id, np.int32)
        finished = np.zeros(len(tokens), bool)
        drawn = []
        for _ in range(self.vocab.max_length - 1):  # as long as the longest training targets
            log_probs, states = self.step(photos, tokens, states)
            seed = rng.integers(2 ** 31 - 1, size=2)
            tokens = np.array(tf.random.stateless_categorical(log_probs, 1, seed, dtype=tf.int32)[:, 0])
            tokens[finished] = self.vocab.pad_id
            drawn.append(tokens)
            finished |= tokens == self.vocab.end_id
            if finished.all():
                break
        return np.stack(drawn, axis=1)
