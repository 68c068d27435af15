import numpy as np
import pytest

from caption_generator.caption import Captioner, next_word_log_probs
from caption_generator.errors import CaptionError
from caption_generator.model import build_model
from caption_generator.vocabulary import Vocabulary


def test_step_decoding_matches_the_whole_caption_model(overfit, random_features):
    """The cell-by-cell decoder computes exactly what the training model computes per position,
    through the same decoding distribution."""
    model, vocab, firsts, _ = overfit
    name = next(iter(firsts))
    ids = vocab.encode(firsts[name][0])[:-1]
    full = model.predict({"features": random_features[name][None], "words": np.array([ids])}, verbose=0)[0]
    captioner = Captioner(model, vocab)
    photos, states = captioner.initial(random_features[name][None], 1)
    for t, token in enumerate(ids):
        log_probs, states = captioner.step(photos, np.array([token], np.int32), states)
        np.testing.assert_allclose(np.exp(log_probs[0]), np.exp(next_word_log_probs(full[t])), atol=1e-5)


def test_beam_one_equals_greedy_and_wider_beams_score_no_worse(overfit, random_features):
    import keras
    _, vocab, _, _ = overfit
    keras.utils.set_random_seed(1)
    model = build_model(len(vocab), units=32, embedding_dim=16)  # untrained: many near-ties
    captioner = Captioner(model, vocab)
    feats = np.stack(list(random_features.values())[:6])
    greedy = captioner.greedy(feats)
    assert captioner.beam_search(feats, beam=1) == greedy
    assert all(len(c.split()) <= vocab.max_length - 2 for c in greedy)

    def log_prob(feature, caption):
        ids = vocab.encode(caption)
        probs = model.predict({"features": feature[None], "words": np.array([ids[:-1]])}, verbose=0)[0]
        return float(np.sum(next_word_log_probs(probs).numpy()[np.arange(len(ids) - 1), ids[1:]]))

    wide = captioner.beam_search(feats, beam=4, length_penalty=0.0)
    for feature, g, w in zip(feats, greedy, wide):
        if len(g.split()) < vocab.max_length - 2:  # greedy finished with <end>
            assert log_prob(feature, w) >= log_prob(feature, g) - 1e-4


def test_overfitted_model_beam_search_finds_the_caption(overfit, random_features):
    model, vocab, firsts, _ = overfit
    names = list(firsts)[:8]
    captions = Captioner(model, vocab).beam_search(np.stack([random_features[n] for n in names]), beam=3)
    assert sum(c == firsts[n][0] for n, c in zip(names, captions)) >= 7


def test_model_and_vocabulary_that_do_not_belong_together():
    vocab = Vocabulary.build(["a dog runs"])
    with pytest.raises(CaptionError, match="do not belong together"):
        Captioner(build_model(len(vocab) + 3, units=8, embedding_dim=8), vocab)


def test_decoding_distribution_forbids_pad_start_and_unk():
    probs = np.array([[0.1, 0.2, 0.3, 0.3, 0.1], [0.0, 0.0, 0.5, 0.0, 0.5]], np.float32)  # pad start end unk word
    log_probs = next_word_log_probs(probs).numpy()
    np.testing.assert_allclose(np.exp(log_probs), [[0, 0, 0.75, 0, 0.25], [0, 0, 0.5, 0, 0.5]], atol=1e-6)


def test_captions_never_hold_unk_even_when_the_model_prefers_it(overfit, random_features):
    import keras
    _, vocab, firsts, _ = overfit
    unk = vocab.index["<unk>"]
    keras.utils.set_random_seed(2)
    model = build_model(len(vocab), units=32, embedding_dim=16)  # untrained: near-uniform next words
    bias = model.get_layer("next_word").bias
    bias.assign(bias.numpy() - 5.0 * (np.arange(len(vocab)) == vocab.end_id))  # long captions
    base = Captioner(model, vocab)
    feats = np.stack([random_features[n] for n in firsts])
    expected = {beam: base.beam_search(feats, beam=beam) for beam in (1, 3)}
    bias.assign(bias.numpy() + 10.0 * (np.arange(len(vocab)) == unk))  # now <unk> takes nearly all the probability
    probs = model.predict({"features": feats, "words": np.full((len(feats), 3), vocab.start_id)}, verbose=0)
    assert np.all(probs.argmax(axis=-1) == unk) and probs[..., unk].min() > 0.9
    captioner = Captioner(model, vocab)
    for beam in (1, 3):
        captions = captioner.beam_search(feats, beam=beam)
        assert all(captions) and not any("unk" in c for c in captions)
        assert captions == expected[beam]  # the other words keep their odds
    samples = captioner.sample(feats, 5, np.random.default_rng(0))
    written = samples != vocab.pad_id
    assert written[:, 0].all() and np.all(written[:, :-1] >= written[:, 1:])  # padding only after the end
    assert not np.isin(samples, [vocab.start_id, unk]).any()
