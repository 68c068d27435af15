"""Issue 16: a confidence for every caption, a familiarity for every photo, and the flag they raise."""
import os

import numpy as np
import pytest

from caption_generator import caption_photos, load_captioner
from caption_generator.caption import Captioner, next_word_log_probs
from caption_generator.confidence import Assessment, Calibration, assess, familiarity, summarize
from caption_generator.errors import CaptionError
from caption_generator.layouts import open_layout
from conftest import FLICKR


def test_the_confidence_is_the_mean_log_probability_of_the_captions_tokens_and_deterministic(overfit, random_features):
    model, vocab, firsts, _ = overfit
    captioner = Captioner(model, vocab)
    features = np.stack([random_features[n] for n in list(firsts)[:6]])
    for beam in (1, 3):
        captions, mean_log_probs = captioner.scored_beam_search(features, beam)
        assert captions == captioner.beam_search(features, beam)
        np.testing.assert_array_equal(mean_log_probs, captioner.scored_beam_search(features, beam)[1])
        alone = [captioner.scored_beam_search(f[None], beam)[1][0] for f in features]
        np.testing.assert_allclose(alone, mean_log_probs, atol=1e-5)
        for feature, caption, score in zip(features, captions, mean_log_probs):
            ids = vocab.encode(caption)  # the words and the end, each after the tokens before it
            probs = model.predict({"features": feature[None], "words": np.array([ids[:-1]])}, verbose=0)[0]
            expected = next_word_log_probs(probs).numpy()[np.arange(len(ids) - 1), ids[1:]].mean()
            assert score == pytest.approx(expected, abs=1e-4)
    assert captioner.scored_beam_search(features[:0], 3)[0] == []


def test_training_photos_are_familiar_and_other_photos_are_not():
    rng = np.random.default_rng(0)
    kinds = rng.normal(size=(4, 2048))  # four kinds of photo; each photo is its kind plus its own detail
    train = np.repeat(kinds, 10, axis=0) + 0.5 * rng.normal(size=(40, 2048))
    basis, photos = summarize(train, dimensions=8)
    assert basis.shape == (8, 2048) and photos.shape == (40, 8) and photos.dtype == np.float16
    new_of_a_kind = kinds + 0.5 * rng.normal(size=(4, 2048))
    unlike = rng.normal(size=(4, 2048))
    assert familiarity(train, basis, photos).min() > 0.7
    assert familiarity(new_of_a_kind, basis, photos).min() > 0.7
    assert familiarity(unlike, basis, photos).max() < 0.1


def test_assessments_flag_what_is_below_a_threshold(tmp_path):
    rng = np.random.default_rng(0)
    basis, photos = summarize(rng.normal(size=(20, 2048)), dimensions=4)
    calibration = Calibration(basis, photos, 0.5, np.array([1, 3]), np.array([0.2, 0.3]))
    calibration.save(tmp_path / "confidence.npz")
    loaded = Calibration.load(tmp_path / "confidence.npz")
    np.testing.assert_array_equal(loaded.photos, photos)
    assert loaded.familiarity_threshold == 0.5 and loaded.confidence_threshold(3, 1.0) == 0.3
    assert loaded.confidence_threshold(2, 1.0) is None and loaded.confidence_threshold(3, 1.5) is None

    features = np.stack([basis[0].astype(np.float32)] * 3)  # along the first basis direction
    familiar = familiarity(features, basis, photos)[0]
    log_probs = np.log([0.5, 0.25, 0.1])
    lenient = Calibration(basis, photos, familiar - 0.1, np.array([1]), np.array([0.3]))
    found = assess(log_probs, features, lenient, 1, 1.0)
    assert [a.confidence for a in found] == pytest.approx([0.5, 0.25, 0.1])
    assert [a.flagged for a in found] == [False, True, True] and not any(a.unfamiliar for a in found)
    assert found[1].warning == "the model is unsure of the caption: the caption may well be wrong"
    strange = assess(log_probs[:1], features[:1], Calibration(basis, photos, familiar + 0.1, np.array([1]),
                                                              np.array([0.3])), 1, 1.0)[0]
    assert strange.unfamiliar and strange.warning.startswith("the photo is unlike the training photos")
    assert set(strange.to_json()) == {"confidence", "familiarity", "flagged", "warning"}
    assert assess(log_probs, features, None, 1, 1.0)[0] == Assessment(0.5, None, False, False)
    unsure_anywhere = assess(log_probs, features, loaded, 5, 1.0)  # no threshold for beam 5: never unsure
    assert not any(a.unsure for a in unsure_anywhere)

    (tmp_path / "damaged.npz").write_bytes((tmp_path / "confidence.npz").read_bytes()[:1000])
    with pytest.raises(CaptionError, match="not a confidence calibration"):
        Calibration.load(tmp_path / "damaged.npz")


@pytest.mark.skipif(not os.environ.get("XCEPTION_WEIGHTS"), reason="needs the ImageNet weights ($XCEPTION_WEIGHTS)")
def test_the_shipped_model_knows_its_training_photos_and_flags_noise_and_photos_from_elsewhere(tmp_path):
    from scripts.calibrate_confidence import sample_photos

    assert load_captioner()[0].calibration is not None
    layout = open_layout(FLICKR)
    trained_on = [layout.photo_path(n) for n in layout.split("train")]
    elsewhere = sample_photos(tmp_path)
    results = {r.path: r for r in caption_photos([*trained_on, *elsewhere])}
    assert all(not results[p].assessment.unfamiliar for p in trained_on), \
        [(p.name, results[p].assessment) for p in trained_on]
    flagged = {p.name for p in elsewhere if results[p].assessment.flagged}
    assert {"china.jpg", "flower.jpg", "logo2.png", "dots.png", "noise_0.png", "noise_1.png", "noise_2.png"} <= flagged
    # The Xception features of Grace Hopper's portrait (a person, as Flickr8k's) and of a gift box drawing are
    # familiar enough, and their captions confident enough, to pass: the README says so.
