import logging

import pytest

from caption_generator import data
from caption_generator.files import CaptionError
from conftest import FLICKR


def test_clean_caption_keeps_one_letter_words_and_drops_digits_and_punctuation():
    assert data.clean_caption("A dog, 2 cats & a T-shirt in 3rd place!") == "a dog cats a tshirt in place"
    assert data.clean_caption("  ... 123 ") == ""


def test_read_captions_handles_messy_files(tmp_path, caplog):
    path = tmp_path / "captions.txt"
    path.write_bytes(b"a.jpg#0\tA dog .\r\n\r\nno tab here\r\nb.jpg#1\tA caf\xe9 .\r\na.jpg#1\tTwo dogs .\r\n")
    with caplog.at_level(logging.WARNING):
        captions = data.read_captions(path)
    assert captions == {"a.jpg": ["A dog .", "Two dogs ."], "b.jpg": ["A caf\ufffd ."]}
    assert "skipped 1 malformed" in caplog.text and "not UTF-8" in caplog.text


def test_read_captions_with_nothing_usable_is_an_error(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("\n\njunk\n")
    with pytest.raises(CaptionError, match="no captions"):
        data.read_captions(path)


def test_official_split_drops_missing_photo_with_a_count(caplog):
    with caplog.at_level(logging.WARNING):
        train = data.read_split(FLICKR, "train")
    assert len(train) == 14 and "3050606344_af711c726c.jpg" not in train
    assert "1 of 15 photos missing" in caplog.text
    assert len(data.read_split(FLICKR, "dev")) == 4 and len(data.read_split(FLICKR, "test")) == 4
    assert not set(train) & set(data.read_split(FLICKR, "test"))


def test_split_with_no_photo_left_stops_clearly(flickr_copy):
    for photo in data.image_dir(flickr_copy).iterdir():
        photo.unlink()
    with pytest.raises(CaptionError, match="none of its"):
        data.read_split(flickr_copy, "dev")


def test_unknown_split_and_missing_root_are_clear_errors(tmp_path):
    with pytest.raises(CaptionError, match="unknown split"):
        data.read_split(FLICKR, "val")
    with pytest.raises(CaptionError, match="no image folder"):
        data.image_dir(tmp_path)
    with pytest.raises(CaptionError, match="no such file"):
        data.captions_path(tmp_path)


def test_other_image_folder_spelling(flickr_copy):
    (flickr_copy / "Flicker8k_Dataset").rename(flickr_copy / "Flickr8k_Dataset")
    assert data.image_dir(flickr_copy).name == "Flickr8k_Dataset"
    assert len(data.read_split(flickr_copy, "dev")) == 4


def test_prepare_writes_descriptions_that_load_back(tmp_path):
    out = tmp_path / "descriptions.txt"
    written = data.prepare(FLICKR, out)
    assert data.load_descriptions(out) == written
    assert sum(map(len, written.values())) == 115
    assert all(c == data.clean_caption(c) for texts in written.values() for c in texts)


def test_verify_reports_resized_copies(tmp_path):
    from conftest import DATA
    counts = data.verify(FLICKR, DATA / "original_image_sha256.tsv")
    assert counts == {"match": 0, "differ": 22, "missing": 1}
