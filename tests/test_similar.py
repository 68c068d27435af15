import time

import numpy as np
import pytest

from caption_generator.errors import CaptionError
from caption_generator.files import load_pickle, save_pickle
from caption_generator.layouts import open_layout
from caption_generator.similar import CaptionIndex, open_index
from conftest import FLICKR, PHOTOS


@pytest.fixture(scope="module")
def index(descriptions, random_features):
    return CaptionIndex.build(descriptions, random_features, open_layout(FLICKR))


def test_text_ranking_finds_the_photo_of_a_reference_caption_unless_it_is_excluded(index, descriptions):
    name = "1022454332_6af2c1449a.jpg"
    caption = descriptions[name][2]
    found = index.query(caption, n=4, threshold=0.0)
    assert found.matches[0].name == name and found.matches[0].caption == caption
    assert found.matches[0].score == pytest.approx(1.0, abs=1e-5)
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4
    assert found.matches[0].path == open_layout(FLICKR).photo_path(name).resolve()
    others = index.query(caption, n=30, threshold=0.0, exclude=name)
    assert name not in [m.name for m in others.matches] and len(others.matches) == len(index) - 1


def test_threshold_keeps_only_matches_above_it_and_falls_back_to_the_closest_below(index, descriptions):
    name = "1022454332_6af2c1449a.jpg"
    above = index.query(descriptions[name][0], n=6, threshold=0.99)
    assert not above.below_threshold and [m.name for m in above.matches] == [name]
    below = index.query("a zebra with a dog", n=3, threshold=0.9, exclude=name)
    assert below.below_threshold and len(below.matches) == 3
    assert all(m.score < 0.9 for m in below.matches)
    assert "nothing above the threshold 0.90" in below.describe()
    assert below.to_json()["below_threshold"] is True
    assert index.query("the is of", n=3).matches  # only stop words: every score is 0, still the closest


def test_image_ranking_and_the_combined_ranking(index, descriptions, random_features):
    name = "2513260012_03d33305cf.jpg"
    by_image = index.query("anything", 2 * random_features[name], n=3, by="image", threshold=0.0)
    assert by_image.matches[0].name == name and by_image.matches[0].score == pytest.approx(1.0, abs=1e-5)
    caption = descriptions[name][0]
    text, _ = index.scores(caption, by="text")
    image, _ = index.scores(caption, random_features[name], by="image")
    both, _ = index.scores(caption, random_features[name], by="both")
    np.testing.assert_allclose(both, (text + image) / 2, atol=1e-6)
    assert index.query(caption, random_features[name], n=1, by="both", threshold=0.0).matches[0].name == name
    assert name not in [m.name for m in index.query(caption, random_features[name], 5, "both", exclude=name).matches]


def test_index_without_features_cannot_rank_by_image(descriptions):
    text_only = CaptionIndex.build(descriptions)
    assert text_only.default_by() == "text"
    with pytest.raises(CaptionError, match="no photo features"):
        text_only.query("a dog", np.ones(2048), by="image")


def test_saved_index_is_plain_data_and_answers_the_same(index, tmp_path, descriptions, random_features):
    index.save(tmp_path / "caption_index.p")
    saved = load_pickle(tmp_path / "caption_index.p")  # the restricted unpickler accepts it
    assert isinstance(saved["vocabulary"], list) and isinstance(saved["data"], np.ndarray)
    loaded = CaptionIndex.load(tmp_path / "caption_index.p")
    name = next(iter(descriptions))
    for by in ("text", "image", "both"):
        np.testing.assert_allclose(loaded.scores("two dogs play in the snow", random_features[name], by)[0],
                                   index.scores("two dogs play in the snow", random_features[name], by)[0])
    save_pickle({"version": 0}, tmp_path / "old.p")
    with pytest.raises(CaptionError, match="not a caption index"):
        CaptionIndex.load(tmp_path / "old.p")


def test_open_index_builds_once_and_rebuilds_when_the_captions_change(flickr_copy, tmp_path):
    path = tmp_path / "caption_index.p"
    layout = open_layout(flickr_copy)
    with pytest.raises(CaptionError, match="give --data-root"):
        open_index(path)
    first = open_index(path, layout)
    assert len(first) == len(PHOTOS)  # photos missing on disk are left out
    stamp = path.stat().st_mtime_ns
    assert len(open_index(path, layout).captions) == len(first.captions)
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    captions = layout.captions_path()
    captions.write_text(captions.read_text() + "1022454332_6af2c1449a.jpg#5\tA red kite over a beach .\n")
    assert len(open_index(path, layout).captions) == len(first.captions) + 1
    assert len(open_index(path).captions) == len(first.captions) + 1


def test_an_index_of_an_older_version_is_rebuilt_from_the_data_root(flickr_copy, tmp_path):
    path = tmp_path / "caption_index.p"
    save_pickle({"version": 1, "folder": str(flickr_copy)}, path)
    with pytest.raises(CaptionError, match="not a caption index of this version"):
        open_index(path)
    assert len(open_index(path, open_layout(flickr_copy))) == len(PHOTOS)
    assert len(open_index(path)) == len(PHOTOS)


def test_a_query_over_40000_captions_takes_milliseconds(descriptions):
    rng = np.random.default_rng(0)
    words = sorted({w for texts in descriptions.values() for c in texts for w in c.split()})
    big = {f"{i}.jpg": [" ".join(rng.choice(words, 11)) for _ in range(5)] for i in range(8000)}
    index = CaptionIndex.build(big)
    index.query("a dog runs on the grass")
    start = time.perf_counter()
    for _ in range(20):
        index.query("a dog runs on the grass", n=6)
    assert (time.perf_counter() - start) / 20 < 0.05
