"""Reading data roots: the caption files, the splits and the photos of every layout, built in tmp_path from
the Flickr8k fixture, which all yield the same examples; photos found wherever a layout keeps them."""
import csv
import json
import logging
import shutil

import pytest

from caption_generator import data
from caption_generator.errors import CaptionError
from caption_generator.layouts import SPLITS, find_photos, open_layout, read_captions, seeded_split
from conftest import FLICKR, PHOTOS, karpathy_coco

FIXTURE = open_layout(FLICKR)
RAW = FIXTURE.captions()
OFFICIAL = {s: FIXTURE.split(s) for s in SPLITS}
SPLIT_OF = {name: s for s, names in OFFICIAL.items() for name in names}


def _photos(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for photo in PHOTOS:
        shutil.copy(photo, folder / photo.name)


def _write_csv(path, with_split):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption", "split"] if with_split else ["image", "caption"])
        for image, texts in RAW.items():
            for text in texts:
                writer.writerow([image, text, SPLIT_OF.get(image, "")] if with_split else [image, text])


def captions_csv(root):
    _photos(root / "Images")
    _write_csv(root / "captions.txt", with_split=False)


def karpathy(root):
    _photos(root / "Flicker8k_Dataset")
    names = {"dev": "val", "train": "train", "test": "test"}
    images = [{"filename": image, "split": "restval" if SPLIT_OF.get(image) == "train" and i % 2 else
               names[SPLIT_OF.get(image, "train")],
               "sentences": [{"raw": t, "tokens": t.lower().split()} for t in texts]}
              for i, (image, texts) in enumerate(RAW.items())]
    (root / "dataset_flickr8k.json").write_text(json.dumps({"images": images, "dataset": "flickr8k"}))


def folder_csv(root):
    _photos(root)
    _write_csv(root / "my captions.csv", with_split=True)


def folder_csv_unsplit(root):
    _photos(root)
    _write_csv(root / "captions.csv", with_split=False)


BUILD = {"karpathy": karpathy, "karpathy_coco": karpathy_coco, "captions_csv": captions_csv, "folder_csv": folder_csv}
LAYOUT_OF = {"karpathy_coco": "karpathy"}  # the layout a built root is read in, where it is not its name


def make_root(case: str, tmp_path):
    """The fixture data root as the case lays it out (built in tmp_path), checking its layout is detected."""
    if case == "flickr8k":
        return FLICKR
    BUILD[case](tmp_path)
    assert open_layout(tmp_path).name == LAYOUT_OF.get(case, case)
    return tmp_path


@pytest.fixture(params=["flickr8k", *BUILD])
def root(request, tmp_path):
    return make_root(request.param, tmp_path)


def test_every_layout_yields_the_same_captions_and_photos(root, tmp_path):
    layout = open_layout(root)
    assert layout.captions() == RAW
    assert data.prepare(layout, tmp_path / "descriptions.txt") == data.clean_descriptions(RAW)
    assert sorted(p.name for p in layout.photos()) == sorted(p.name for p in PHOTOS)
    assert all(layout.photo_path(p.name).is_file() for p in PHOTOS)


@pytest.mark.parametrize("case", ["flickr8k", *(name for name in BUILD if name != "captions_csv")])
def test_a_given_split_is_kept(case, tmp_path):
    """Every layout that carries a split (the Kaggle captions.txt has none) keeps the official one."""
    layout = open_layout(make_root(case, tmp_path))
    for split in SPLITS:
        assert sorted(layout.split(split)) == sorted(OFFICIAL[split])


def test_photos_in_sub_folders_are_found_through_the_layout(coco_root):
    """COCO's photos sit in sub-folders of the image folder: a photo's path is the layout's, not image_dir/name."""
    layout = open_layout(coco_root)
    name = OFFICIAL["test"][0]
    assert layout.photo_path(name) == coco_root / "images" / "val2017" / name
    assert not (layout.image_dir() / name).exists()
    assert data.photo_paths(layout, limit=1) == [layout.photo_path(layout.split(s)[0]) for s in SPLITS]
    assert all(path.is_file() for path in data.photo_paths(layout))


def test_without_a_split_one_is_made_reproducibly(tmp_path):
    (tmp_path / "kaggle").mkdir()
    captions_csv(tmp_path / "kaggle")
    folder_csv_unsplit(tmp_path / "own")
    present = {p.name for p in PHOTOS}  # the fixture lacks one captioned photo
    made = {s: [n for n in seeded_split(list(RAW), s) if n in present] for s in SPLITS}
    for root in (tmp_path / "kaggle", tmp_path / "own"):
        splits = {s: open_layout(root).split(s) for s in SPLITS}
        assert splits == made  # the same in both layouts, every time
        assert sorted(n for names in splits.values() for n in names) == sorted(present & set(RAW))
        assert [len(splits[s]) for s in SPLITS] == [18, 2, 2]
    assert seeded_split(list(RAW), "dev", seed=1) != seeded_split(list(RAW), "dev", seed=0)


def test_a_layout_named_whose_files_are_not_there_and_an_unknown_layout(tmp_path):
    folder_csv(tmp_path)
    with pytest.raises(CaptionError, match="found 0"):
        open_layout(tmp_path, "karpathy").captions()
    with pytest.raises(CaptionError, match="unknown layout"):
        open_layout(tmp_path, "coco")


# --- caption files --------------------------------------------------------------------------------

def test_read_captions_handles_messy_files(tmp_path, caplog):
    path = tmp_path / "captions.txt"
    path.write_bytes(b"a.jpg#0\tA dog .\r\n\r\nno tab here\r\nb.jpg#1\tA caf\xe9 .\r\na.jpg#1\tTwo dogs .\r\n")
    with caplog.at_level(logging.WARNING):
        captions = read_captions(path)
    assert captions == {"a.jpg": ["A dog .", "Two dogs ."], "b.jpg": ["A caf\ufffd ."]}
    assert "skipped 1 malformed" in caplog.text and "not UTF-8" in caplog.text


def test_read_captions_with_nothing_usable_is_an_error(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("\n\njunk\n")
    with pytest.raises(CaptionError, match="no captions"):
        read_captions(path)


# --- splits and photo folders ---------------------------------------------------------------------

def test_official_split_drops_missing_photo_with_a_count(caplog):
    with caplog.at_level(logging.WARNING):
        train = FIXTURE.split("train")
    assert len(train) == 14 and "3050606344_af711c726c.jpg" not in train
    assert "1 of 15 photos missing" in caplog.text
    assert len(FIXTURE.split("dev")) == 4 and len(FIXTURE.split("test")) == 4
    assert not set(train) & set(FIXTURE.split("test"))


def test_split_with_no_photo_left_stops_clearly(flickr_copy):
    layout = open_layout(flickr_copy)
    for photo in layout.image_dir().iterdir():
        photo.unlink()
    with pytest.raises(CaptionError, match="none of its"):
        layout.split("dev")


def test_unknown_split_and_missing_root_are_clear_errors(tmp_path):
    with pytest.raises(CaptionError, match="unknown split"):
        FIXTURE.split("val")
    with pytest.raises(CaptionError, match="no image folder"):
        open_layout(tmp_path).image_dir()
    with pytest.raises(CaptionError, match="no such file"):
        open_layout(tmp_path).captions_path()


def test_other_image_folder_spelling(flickr_copy):
    (flickr_copy / "Flicker8k_Dataset").rename(flickr_copy / "Flickr8k_Dataset")
    layout = open_layout(flickr_copy)
    assert layout.image_dir().name == "Flickr8k_Dataset"
    assert len(layout.split("dev")) == 4


def test_find_photos_lists_folders_and_reports_what_is_not_a_photo(tmp_path):
    (tmp_path / "empty").mkdir()
    photos, errors = find_photos([PHOTOS[0], FLICKR / "Flicker8k_Dataset", tmp_path / "empty", tmp_path / "none.jpg"])
    assert photos == [PHOTOS[0], *PHOTOS]
    assert [message for _, message in errors] == [f"{tmp_path / 'empty'}: a folder with no photos in it",
                                                  f"{tmp_path / 'none.jpg'}: no such file or folder"]
