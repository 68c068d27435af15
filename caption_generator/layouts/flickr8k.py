"""The original Flickr8k zips: Flickr8k_text/ (token file, split lists) and Flicker8k_Dataset/."""
from __future__ import annotations

from pathlib import Path

from ..errors import CaptionError
from .base import Layout
from .text import read_captions

TEXT_DIR = "Flickr8k_text"
CAPTIONS_FILE = "Flickr8k.token.txt"
IMAGE_DIR_NAMES = ("Flicker8k_Dataset", "Flickr8k_Dataset")
SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "dev": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


class Flickr8k(Layout):
    """`<image>#<n>\\t<caption>` lines in Flickr8k_text/Flickr8k.token.txt; one list of names per split."""

    name = "flickr8k"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / TEXT_DIR / CAPTIONS_FILE).is_file()

    def captions_path(self) -> Path:
        path = self.root / TEXT_DIR / CAPTIONS_FILE
        if not path.is_file():
            raise CaptionError(f"{path}: no such file (is --data-root a dataset folder? "
                               "layouts: flickr8k, karpathy, captions_csv, folder_csv; see --layout)")
        return path

    def captions(self) -> dict[str, list[str]]:
        return read_captions(self.captions_path())

    def image_dir(self) -> Path:
        for name in IMAGE_DIR_NAMES:
            if (self.root / name).is_dir():
                return self.root / name
        raise CaptionError(f"{self.root}: no image folder ({' or '.join(IMAGE_DIR_NAMES)})")

    def split_names(self, split: str) -> list[str]:
        path = self.root / TEXT_DIR / SPLIT_FILES[split]
        if not path.is_file():
            raise CaptionError(f"{path}: no such file")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [n for n in (line.strip() for line in lines) if n]
