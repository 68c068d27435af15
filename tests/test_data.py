import pytest

from caption_generator import data
from caption_generator.errors import CaptionError
from caption_generator.layouts import open_layout
from conftest import DATA, FLICKR


def test_clean_caption_keeps_one_letter_words_and_drops_digits_and_punctuation():
    assert data.clean_caption("A dog, 2 cats & a T-shirt in 3rd place!") == "a dog cats a tshirt in place"
    assert data.clean_caption("  ... 123 ") == ""


def test_prepare_writes_descriptions_that_load_back(tmp_path):
    out = tmp_path / "descriptions.txt"
    written = data.prepare(open_layout(FLICKR), out)
    assert data.load_descriptions(out) == written
    assert sum(map(len, written.values())) == 115
    assert all(c == data.clean_caption(c) for texts in written.values() for c in texts)
    with pytest.raises(CaptionError, match="run the prepare step first"):
        data.load_descriptions(tmp_path / "missing.txt")


def test_splits_of_descriptions_and_the_first_photos_of_each(tmp_path):
    layout = open_layout(FLICKR)
    data.prepare(layout, tmp_path / "descriptions.txt")
    splits = data.load_splits(layout, tmp_path / "descriptions.txt", limit=2)
    assert [list(splits[s]) for s in ("train", "dev")] == [layout.split(s)[:2] for s in ("train", "dev")]
    assert data.photo_paths(layout, limit=2) == [layout.photo_path(n) for s in ("train", "dev", "test")
                                                 for n in layout.split(s)[:2]]
    with pytest.raises(CaptionError, match="no photo has a caption"):
        data.split_descriptions(splits["train"], ["other.jpg"], "test")


def test_verify_reports_resized_copies():
    counts = data.verify(open_layout(FLICKR), DATA / "original_image_sha256.tsv")
    assert counts == {"match": 0, "differ": 22, "missing": 1}
