"""The merge model: model.png drawn by Graphviz's dot, or one line on how to install Graphviz."""
from __future__ import annotations

import logging

import pytest
from PIL import Image

from caption_generator.model import build_model, plot
from conftest import HAS_DOT, NO_DOT


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_plot_draws_the_model(tmp_path):
    assert plot(build_model(10, units=8, embedding_dim=8), tmp_path / "model.png")
    with Image.open(tmp_path / "model.png") as img:
        assert img.format == "PNG" and min(img.size) > 100
    assert [p.name for p in tmp_path.iterdir()] == ["model.png"]


def test_plot_without_dot_says_how_to_install_graphviz(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot
    with caplog.at_level(logging.WARNING):
        assert not plot(build_model(10, units=8, embedding_dim=8), tmp_path / "model.png")
    assert not list(tmp_path.iterdir())
    [message] = [r.getMessage() for r in caplog.records]
    assert "model.png not drawn" in message and "install Graphviz" in message and "\n" not in message


def test_tied_embeddings_share_one_matrix_learn_and_decode_step_by_step(descriptions, random_features, tmp_path):
    """With tie_embeddings the output layer is the word embeddings in reverse: no vocab-sized kernel of its
    own, the loss falls, the step decoder computes what the whole model computes, and it saves and loads."""
    import keras
    import numpy as np

    from caption_generator.caption import Captioner, next_word_log_probs
    from caption_generator.model import load_model, vocab_size_of
    from caption_generator.train import caption_arrays, compile_model, make_dataset
    from caption_generator.vocabulary import Vocabulary

    firsts = {name: texts[:1] for name, texts in descriptions.items()}
    vocab = Vocabulary.build(c for texts in firsts.values() for c in texts)
    keras.utils.set_random_seed(0)
    tied, untied = (build_model(len(vocab), units=16, embedding_dim=8, tie_embeddings=t) for t in (True, False))
    assert vocab_size_of(tied) == len(vocab)
    assert [w.shape for w in tied.weights if len(vocab) in w.shape] == [(len(vocab), 8)]  # the embeddings only
    # untied: decoder_dense 16 -> 16 and next_word 16 -> vocab (with biases); tied: decoder_dense 16 -> 8 only
    assert untied.count_params() - tied.count_params() == (16 * 16 + 16) + (16 + 1) * len(vocab) - (16 * 8 + 8)
    compile_model(tied, learning_rate=1e-2)
    data = make_dataset(*caption_arrays(firsts, vocab, random_features), batch_size=8, shuffle=False)
    losses = tied.fit(data, epochs=20, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < 0.7 * losses[0]

    tied.save(tmp_path / "tied.keras")
    loaded = load_model(tmp_path / "tied.keras")
    name = next(iter(firsts))
    ids = vocab.encode(firsts[name][0])[:-1]
    inputs = {"features": random_features[name][None], "words": np.array([ids])}
    full = tied.predict(inputs, verbose=0)[0]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0)[0], full, atol=1e-6)
    captioner = Captioner(loaded, vocab)
    photos, states = captioner.initial(random_features[name][None], 1)
    for t, token in enumerate(ids):
        log_probs, states = captioner.step(photos, np.array([token], np.int32), states)
        np.testing.assert_allclose(np.exp(log_probs[0]), np.exp(next_word_log_probs(full[t])), atol=1e-5)
