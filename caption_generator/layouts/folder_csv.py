"""A user's own data: a folder of photos with one CSV of image,caption (optionally split) in it."""
from __future__ import annotations

from pathlib import Path

from ..errors import CaptionError
from .captions_csv import CaptionsCsv, is_caption_csv
from .text import decode_text


def _caption_csvs(root: Path) -> list[Path]:
    return [p for p in sorted(root.glob("*.csv")) if p.is_file() and is_caption_csv(decode_text(p)[:4096])]


class FolderCsv(CaptionsCsv):
    """The photos are the data root's own files; the captions are its only CSV with an image,caption header."""

    name = "folder_csv"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return root.is_dir() and len(_caption_csvs(root)) == 1

    def captions_path(self) -> Path:
        found = _caption_csvs(self.root)
        if len(found) != 1:
            raise CaptionError(f"{self.root}: needs exactly one CSV with an image,caption header, found {len(found)}")
        return found[0]

    def image_dir(self) -> Path:
        if not self.root.is_dir():
            raise CaptionError(f"{self.root}: no such folder")
        return self.root
