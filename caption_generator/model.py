"""The merge model: photo features and the caption so far meet only after the LSTM."""
from __future__ import annotations

import logging
import os
import shutil

from .backend import keras

from .config import DEFAULT_PLOT, TrainConfig
from .errors import CaptionError
from .features import FEATURE_SIZE

log = logging.getLogger(__name__)


def build_model(vocab_size: int, units: int = TrainConfig.units, embedding_dim: int = TrainConfig.embedding_dim,
                dropout: float = TrainConfig.dropout, photo_dropout: float = TrainConfig.photo_dropout,
                normalize_photo: bool = TrainConfig.normalize_photo, tie_embeddings: bool = TrainConfig.tie_embeddings,
                feature_size: int = FEATURE_SIZE) -> keras.Model:
    """Photo features -> [unit length] -> Dropout -> Dense(relu); words -> Embedding(mask_zero) -> Dropout -> LSTM;
    add -> Dense(relu) -> Dense(vocab, softmax).

    The LSTM returns every step, so one pass over a caption predicts each next word at once;
    the photo vector is added to every step (the same model as feeding prefixes one by one).
    With `tie_embeddings`, the last Dense(relu) has embedding_dim units and the output layer is the word
    embeddings used in reverse (keras.layers.ReversibleEmbedding; no weights of its own) -> softmax.
    """
    features = keras.Input((feature_size,), name="features")
    words = keras.Input((None,), dtype="int32", name="words")
    photo = keras.layers.UnitNormalization(name="photo_norm")(features) if normalize_photo else features
    photo = keras.layers.Dropout(photo_dropout, name="photo_dropout")(photo)
    photo = keras.layers.Dense(units, activation="relu", name="photo_dense")(photo)
    photo = keras.layers.Reshape((1, units), name="photo_per_step")(photo)
    embedding = (keras.layers.ReversibleEmbedding if tie_embeddings else keras.layers.Embedding)(
        vocab_size, embedding_dim, mask_zero=True, name="embedding")
    text = keras.layers.Dropout(dropout, name="word_dropout")(embedding(words))
    text = keras.layers.LSTM(units, return_sequences=True, name="lstm")(text)
    merged = keras.layers.Add(name="merge")([photo, text])
    merged = keras.layers.Dense(embedding_dim if tie_embeddings else units, activation="relu",
                                name="decoder_dense")(merged)
    next_word = (keras.layers.Activation("softmax", name="next_word") if tie_embeddings
                 else keras.layers.Dense(vocab_size, activation="softmax", name="next_word"))
    return keras.Model([features, words], _output(embedding, next_word, merged), name="merge_caption_model")


def build_model_from(config: TrainConfig, vocab_size: int) -> keras.Model:
    """The merge model with a training run's settings."""
    return build_model(vocab_size, config.units, config.embedding_dim, config.dropout, config.photo_dropout,
                       config.normalize_photo, config.tie_embeddings)


def _output(embedding: keras.layers.Layer, next_word: keras.layers.Layer, hidden):
    """next_word applied to decoder_dense's output, through the embeddings in reverse if they are tied."""
    if isinstance(embedding, keras.layers.ReversibleEmbedding):
        hidden = embedding(hidden, reverse=True)
    return next_word(hidden)


def next_word_probs(model: keras.Model, hidden):
    """The model's next-word probabilities from its decoder_dense output (through the tied embeddings if
    the model has them)."""
    return _output(model.get_layer("embedding"), model.get_layer("next_word"), hidden)


def vocab_size_of(model: keras.Model) -> int:
    """The number of words the model predicts over."""
    return int(model.outputs[0].shape[-1])


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a .keras caption model, with one clear error for a missing, truncated or foreign file."""
    if not os.path.isfile(path):
        raise CaptionError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, compile=False)
        model.get_layer("next_word")
        model.get_layer("lstm")
    except Exception as e:  # Keras raises many types for damaged archives
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CaptionError(f"{path}: not a readable caption model ({first})") from None
    return model


def plot(model: keras.Model, path: str | os.PathLike = DEFAULT_PLOT) -> bool:
    """Draw the model to `path` with keras.utils.plot_model; False (and a one-line warning) without
    Graphviz's dot or pydot."""
    from .files import atomic_path

    if shutil.which("dot") is None:
        log.warning("%s not drawn: Graphviz's dot is not on PATH (to draw it, install Graphviz: "
                    "apt-get install graphviz, brew install graphviz, or https://graphviz.org/download/)", path)
        return False
    try:
        with atomic_path(path) as tmp:
            keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True)
            if not tmp.stat().st_size:
                raise OSError("nothing drawn")
    except (ImportError, OSError) as e:
        log.warning("cannot draw the model (needs pydot and Graphviz's dot): %s", e)
        return False
    return True
