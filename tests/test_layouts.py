"""Every dataset layout, built in tmp_path from the Flickr8k fixture, yields the same examples."""
import csv
import json
import shutil
import subprocess
import sys

import pytest

from caption_generator import data
from caption_generator.files import CaptionError
from caption_generator.layouts import SPLITS, open_layout, seeded_split
from conftest import FLICKR, ROOT

RAW = data.read_captions(data.captions_path(FLICKR))
OFFICIAL = {s: data.read_split(FLICKR, s) for s in SPLITS}
SPLIT_OF = {name: s for s, names in OFFICIAL.items() for name in names}


def _photos(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for photo in data.list_images(data.image_dir(FLICKR)):
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


BUILD = {"karpathy": karpathy, "captions_csv": captions_csv, "folder_csv": folder_csv}


def make_root(layout: str, tmp_path):
    """The fixture data root in the given layout (built in tmp_path), checking it is detected."""
    if layout == "flickr8k":
        return FLICKR
    BUILD[layout](tmp_path)
    assert open_layout(tmp_path).name == layout
    return tmp_path


@pytest.fixture(params=["flickr8k", *BUILD])
def root(request, tmp_path):
    return make_root(request.param, tmp_path)


def test_every_layout_yields_the_same_captions_and_photos(root, tmp_path):
    assert data.read_captions(data.captions_path(root)) == RAW
    assert data.prepare(root, tmp_path / "descriptions.txt") == data.clean_descriptions(RAW)
    assert sorted(p.name for p in data.photo_paths(root)) == sorted(p.name for p in data.photo_paths(FLICKR))
    assert all(data.image_dir(root) / n == open_layout(root).photo_path(n) for n in OFFICIAL["dev"])


@pytest.mark.parametrize("layout", ["flickr8k", *(name for name in BUILD if name != "captions_csv")])
def test_a_given_split_is_kept(layout, tmp_path):
    """Every layout that carries a split (the Kaggle captions.txt has none) keeps the official one."""
    root = make_root(layout, tmp_path)
    for split in SPLITS:
        assert sorted(data.read_split(root, split)) == sorted(OFFICIAL[split])


def test_without_a_split_one_is_made_reproducibly(tmp_path):
    (tmp_path / "kaggle").mkdir()
    captions_csv(tmp_path / "kaggle")
    folder_csv_unsplit(tmp_path / "own")
    present = {p.name for p in data.photo_paths(FLICKR)}  # the fixture lacks one captioned photo
    made = {s: [n for n in seeded_split(list(RAW), s) if n in present] for s in SPLITS}
    for root in (tmp_path / "kaggle", tmp_path / "own"):
        splits = {s: data.read_split(root, s) for s in SPLITS}
        assert splits == made  # the same in both layouts, every time
        assert sorted(n for names in splits.values() for n in names) == sorted(present & set(RAW))
        assert [len(splits[s]) for s in SPLITS] == [18, 2, 2]
    assert seeded_split(list(RAW), "dev", seed=1) != seeded_split(list(RAW), "dev", seed=0)


def test_layout_named_on_the_command_line(tmp_path):
    folder_csv(tmp_path)
    out = tmp_path / "descriptions.txt"
    result = subprocess.run([sys.executable, "-m", "caption_generator", "prepare", "--data-root", str(tmp_path),
                             "--layout", "folder_csv", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert data.load_descriptions(out) == data.clean_descriptions(RAW)
    with pytest.raises(CaptionError, match="found 0"):
        data.captions_path(open_layout(tmp_path, "karpathy"))
    with pytest.raises(CaptionError, match="unknown layout"):
        open_layout(tmp_path, "coco")
