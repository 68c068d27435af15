"""Keep the benchmark's baseline (bench/baseline.py, the tutorial pipeline) from rotting."""
from __future__ import annotations

import numpy as np
import pytest

from bench import baseline
from caption_generator.layouts import open_layout
from conftest import FLICKR, TINY_INPUT


@pytest.fixture(scope="module")
def three(descriptions):
    names = sorted(descriptions)[:3]
    return {n: descriptions[n] for n in names}


@pytest.fixture(scope="module")
def vocab(three):
    from caption_generator.vocabulary import Vocabulary
    return Vocabulary.build(c for texts in three.values() for c in texts)


def test_per_photo_extraction(tiny_encoder, three):
    paths = [open_layout(FLICKR).photo_path(n) for n in three]
    features = baseline.extract_features(paths, tiny_encoder, TINY_INPUT)
    assert list(features) == list(three)
    assert all(f.shape == (1, 2048) and np.isfinite(f).all() for f in features.values())


def test_generator_yields_every_prefix_with_a_one_hot_next_word(three, vocab):
    name, texts = next(iter(three.items()))
    feature = np.ones((1, 2048), np.float32)
    (photos, prefixes), targets = next(baseline.data_generator({name: texts}, {name: feature}, vocab, vocab.max_length))
    pairs = sum(len(t.split()) + 1 for t in texts)
    assert photos.shape == (pairs, 2048) and prefixes.shape == (pairs, vocab.max_length)
    assert targets.shape == (pairs, len(vocab)) and np.array_equal(targets.sum(1), np.ones(pairs))
    ids = vocab.encode(texts[0])
    assert prefixes[1, -2:].tolist() == ids[:2] and not prefixes[1, :-2].any()  # left-padded prefix
    assert targets[1].argmax() == ids[2]


def test_training_epoch_and_greedy_decoding_match_ours(three, vocab):
    import keras

    from caption_generator.caption import Captioner
    from caption_generator.model import build_model

    rng = np.random.default_rng(0)
    features = {n: rng.random((1, 2048), np.float32) for n in three}
    keras.utils.set_random_seed(0)
    model = baseline.define_model(len(vocab), vocab.max_length, units=16)
    baseline.train_epoch(model, three, features, vocab, steps=1)
    ours = build_model(len(vocab), units=16, embedding_dim=16, normalize_photo=False)  # as the baseline's
    baseline.copy_weights(ours, model)
    photos = np.concatenate(list(features.values())[:2])
    theirs = [baseline.generate_desc(model, vocab, p[None], vocab.max_length) for p in photos]
    longest = vocab.max_length - 2
    assert Captioner(ours, vocab).greedy(photos) == [" ".join(c.split()[:longest]) for c in theirs]
