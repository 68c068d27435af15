"""Karpathy's split JSON (dataset_flickr8k.json, dataset_flickr30k.json, dataset_coco.json) with the photos
in a folder beside it."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from ..errors import CaptionError
from .base import SPLIT_NAMES, Layout

PATTERN = "dataset_*.json"


@lru_cache(maxsize=1)
def _load(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(filepath, filename, split, raw captions) per image of the JSON; cached while the file is unchanged."""
    try:
        images = json.loads(Path(path).read_bytes())["images"]
        return tuple((str(im.get("filepath", "")), str(im["filename"]), SPLIT_NAMES.get(im["split"], im["split"]),
                      tuple(str(s["raw"]).strip() for s in im["sentences"] if str(s.get("raw", "")).strip()))
                     for im in images)
    except (ValueError, KeyError, TypeError) as e:
        raise CaptionError(f"{path}: not a Karpathy split JSON ({type(e).__name__}: {e})") from None


def read_records(path: str | os.PathLike) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """The images of a Karpathy JSON as (filepath, filename, split, raw captions)."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


def read_json_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """{image: [raw captions]} of a Karpathy JSON."""
    captions = {name: list(texts) for _, name, _, texts in read_records(path) if texts}
    if not captions:
        raise CaptionError(f"{path}: no captions found")
    return captions


class Karpathy(Layout):
    """Splits train, val (-> dev), test and restval (-> train) as the JSON gives them; photos at
    `<image folder>/<filepath>/<filename>`, the image folder being the data root's subfolder that holds them."""

    name = "karpathy"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self._where: dict[str, str] | None = None
        self._folder: Path | None = None

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(root.glob(PATTERN))

    def captions_path(self) -> Path:
        found = sorted(self.root.glob(PATTERN))
        if len(found) != 1:
            raise CaptionError(f"{self.root}: needs exactly one {PATTERN}, found {len(found)}")
        return found[0]

    def captions(self) -> dict[str, list[str]]:
        return read_json_captions(self.captions_path())

    def _records(self) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
        return read_records(self.captions_path())

    def image_dir(self) -> Path:
        if self._folder is not None:
            return self._folder
        records = self._records()
        if records:
            filepath, filename = records[0][:2]
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
                if (folder / filepath / filename).is_file():
                    self._folder = folder
                    return folder
        raise CaptionError(f"{self.root}: no subfolder holds the JSON's photos (e.g. {records[0][1] if records else '-'})")

    def photo_path(self, name: str) -> Path:
        return self.image_dir() / self._filepaths().get(name, "") / name

    def _filepaths(self) -> dict[str, str]:
        if self._where is None:
            self._where = {fn: fp for fp, fn, _, _ in self._records()}
        return self._where

    def photos(self) -> list[Path]:
        folder = self.image_dir()
        return [p for p in (folder / fp / fn for fp, fn, _, _ in self._records()) if p.is_file()]

    def split_names(self, split: str) -> list[str]:
        return [name for _, name, s, _ in self._records() if s == split]
