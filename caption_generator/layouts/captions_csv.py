"""The Kaggle Flickr8k/Flickr30k layout: Images/ and captions.txt, a CSV with the header `image,caption`."""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from ..errors import CaptionError
from .base import SPLIT_NAMES, Layout, seeded_split
from .text import captions_by_image, decode_text

log = logging.getLogger(__name__)

IMAGE_DIR = "Images"
CAPTIONS_FILE = "captions.txt"
COLUMNS = ("image", "caption")


def is_caption_csv(text: str) -> bool:
    """Whether the text starts with a CSV header naming (at least) the image and caption columns."""
    header = next(csv.reader(text.splitlines()[:1]), [])
    return set(COLUMNS) <= {h.strip().lower() for h in header}


def read_rows(text: str, path: Path) -> list[dict[str, str]]:
    """The rows of a caption CSV with their image and caption (and split, if given) stripped;
    rows without an image or a caption are skipped and counted."""
    reader = csv.DictReader(text.splitlines())
    reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
    rows, skipped = [], 0
    for row in reader:
        image, caption = (row.get("image") or "").strip(), (row.get("caption") or "").strip()
        if not image or not caption:
            skipped += 1
            continue
        rows.append({"image": image, "caption": caption, "split": (row.get("split") or "").strip().lower()})
    if skipped:
        log.warning("%s: skipped %d malformed rows (no image name or caption)", path, skipped)
    return rows


class CaptionsCsv(Layout):
    """One CSV row per caption; the split is the CSV's `split` column (train/dev/test, or val/restval
    as Karpathy names them) or, without one, made reproducibly with `seed`."""

    name = "captions_csv"

    def __init__(self, root: str | os.PathLike, seed: int = 0):
        super().__init__(root)
        self.seed = seed

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / CAPTIONS_FILE).is_file() and (root / IMAGE_DIR).is_dir()

    def captions_path(self) -> Path:
        path = self.root / CAPTIONS_FILE
        if not path.is_file():
            raise CaptionError(f"{path}: no such file")
        return path

    def captions(self) -> dict[str, list[str]]:
        path = self.captions_path()
        return captions_by_image(((r["image"], r["caption"]) for r in read_rows(decode_text(path), path)), path)

    def image_dir(self) -> Path:
        if not (self.root / IMAGE_DIR).is_dir():
            raise CaptionError(f"{self.root}: no image folder ({IMAGE_DIR})")
        return self.root / IMAGE_DIR

    def split_names(self, split: str) -> list[str]:
        path = self.captions_path()
        rows = read_rows(decode_text(path), path)
        given = {r["image"]: SPLIT_NAMES.get(r["split"], r["split"]) for r in rows if r["split"]}
        if given:
            return [image for image, s in given.items() if s == split]
        return seeded_split([r["image"] for r in rows], split, self.seed)
