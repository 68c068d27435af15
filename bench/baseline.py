"""THE BASELINE: the tutorial pipeline, for bench/run.py to measure against. NOT part of the package.

A faithful, minimal reimplementation of the DataFlair / Machine Learning Mastery
"Training_caption_generator" recipe on Keras 3, with the same data, model sizes and
vocabulary as ours (our Vocabulary stands in for the Keras Tokenizer, which Keras 3 dropped):

- features: one photo at a time, PIL resize to 299x299, x / 127.5 - 1, model.predict on a batch of 1;
- training: a progressive-loading generator that expands each photo's captions into
  (photo, left-padded prefix) -> one-hot next word pairs, one photo per step, fed to model.fit;
- captioning: greedy decoding with one model.predict call per generated word.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import keras
import numpy as np
from keras import layers
from PIL import Image

from caption_generator.vocabulary import Vocabulary


def extract_features(paths: Sequence[Path], model: keras.Model, input_size: int = 299) -> dict[str, np.ndarray]:
    """The tutorial's extract_features: {file name: (1, 2048) features}, one model.predict per photo."""
    features = {}
    for path in paths:
        image = Image.open(path)
        image = image.resize((input_size, input_size))
        image = np.expand_dims(image, axis=0)
        if image.shape[3] == 4:
            image = image[..., :3]
        image = image / 127.5
        image = image - 1.0
        features[Path(path).name] = model.predict(image, verbose=0)
    return features


def define_model(vocab_size: int, max_length: int, units: int = 256) -> keras.Model:
    """The tutorial's define_model: the prefix model (max_length words in, the next word out).
    Its layers carry the names of ours, so that copy_weights can match them."""
    inputs1 = keras.Input(shape=(2048,))
    fe1 = layers.Dropout(0.5)(inputs1)
    fe2 = layers.Dense(units, activation="relu", name="photo_dense")(fe1)
    inputs2 = keras.Input(shape=(max_length,))
    se1 = layers.Embedding(vocab_size, units, mask_zero=True, name="embedding")(inputs2)
    se2 = layers.Dropout(0.5)(se1)
    se3 = layers.LSTM(units, name="lstm")(se2)
    decoder1 = layers.add([fe2, se3])
    decoder2 = layers.Dense(units, activation="relu", name="decoder_dense")(decoder1)
    outputs = layers.Dense(vocab_size, activation="softmax", name="next_word")(decoder2)
    model = keras.Model(inputs=[inputs1, inputs2], outputs=outputs)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def copy_weights(ours: keras.Model, baseline: keras.Model) -> None:
    """Give the baseline model the weights of one of our merge models (the same layers),
    so both decoders can be checked to write the same captions."""
    for name in ("photo_dense", "embedding", "lstm", "decoder_dense", "next_word"):
        baseline.get_layer(name).set_weights(ours.get_layer(name).get_weights())


def create_sequences(vocab: Vocabulary, max_length: int, desc_list: list[str], feature: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (photo, prefix) -> one-hot next word pair of one photo's captions."""
    x1, x2, y = [], [], []
    for desc in desc_list:
        seq = vocab.encode(desc)
        for i in range(1, len(seq)):
            in_seq, out_seq = seq[:i], seq[i]
            in_seq = keras.utils.pad_sequences([in_seq], maxlen=max_length)[0]
            out_seq = keras.utils.to_categorical([out_seq], num_classes=len(vocab))[0]
            x1.append(feature)
            x2.append(in_seq)
            y.append(out_seq)
    return np.array(x1), np.array(x2), np.array(y)


def data_generator(descriptions: dict[str, list[str]], features: dict[str, np.ndarray], vocab: Vocabulary,
                   max_length: int) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
    """The progressive-loading generator: one photo's pairs per step, forever."""
    while True:
        for key, description_list in descriptions.items():
            feature = features[key][0]
            input_image, input_sequence, output_word = create_sequences(vocab, max_length, description_list, feature)
            yield (input_image, input_sequence), output_word


def train_epoch(model: keras.Model, descriptions: dict[str, list[str]], features: dict[str, np.ndarray],
                vocab: Vocabulary, steps: int | None = None) -> None:
    """One pass of the tutorial's training loop (a fresh generator, model.fit for one epoch)."""
    generator = data_generator(descriptions, features, vocab, vocab.max_length)
    model.fit(generator, epochs=1, steps_per_epoch=steps or len(descriptions), verbose=0)


def word_for_id(integer: int, vocab: Vocabulary) -> str | None:
    """The tutorial's reverse look-up, a scan of the word index."""
    for word, index in vocab.index.items():
        if index == integer:
            return word
    return None


def generate_desc(model: keras.Model, vocab: Vocabulary, photo: np.ndarray, max_length: int) -> str:
    """Greedy decoding, one model.predict per word; returns the caption without start/end."""
    in_text = ["<start>"]
    for _ in range(max_length):
        sequence = [vocab.index.get(w, vocab.index["<unk>"]) for w in in_text]
        sequence = keras.utils.pad_sequences([sequence], maxlen=max_length)
        pred = model.predict([photo, sequence], verbose=0)
        word = word_for_id(int(np.argmax(pred)), vocab)
        if word is None or word == "<end>":
            break
        in_text.append(word)
    return " ".join(w for w in in_text[1:] if w not in ("<pad>", "<unk>"))

