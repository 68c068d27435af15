"""The reader interface every layout implements, the split names, and the split made when a layout has none."""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

from ..errors import CaptionError
from .photos import list_images

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SPLIT_NAMES = {"val": "dev", "restval": "train"}  # Karpathy's split names -> ours


class Layout(os.PathLike):
    """A data root read in one layout: its raw captions, its splits and where each photo is.

    A layout stands for its data root wherever a path is expected (os.fspath gives the root).
    """

    name = ""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __fspath__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether `root` looks like a data root of this layout."""
        raise NotImplementedError

    def captions_path(self) -> Path:
        """The file holding the captions."""
        raise NotImplementedError

    def image_dir(self) -> Path:
        """The folder holding the photos."""
        raise NotImplementedError

    def split_names(self, split: str) -> list[str]:
        """The image names the layout lists for a split (train, dev or test), present on disk or not."""
        raise NotImplementedError

    def captions(self) -> dict[str, list[str]]:
        """{image: [raw captions]}, read in the layout's caption format."""
        raise NotImplementedError

    def photo_path(self, name: str) -> Path:
        """Where the photo of that name is."""
        return self.image_dir() / name

    def photos(self) -> list[Path]:
        """Every photo of the data root."""
        return list_images(self.image_dir())

    def split(self, split: str) -> list[str]:
        """The image names of a split whose photo exists; missing ones are dropped with a warning giving their count."""
        if split not in SPLITS:
            raise CaptionError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        names = list(dict.fromkeys(self.split_names(split)))
        present = [n for n in names if self.photo_path(n).is_file()]
        if len(present) < len(names):
            missing = sorted(set(names) - set(present))
            log.warning("%s split: %d of %d photos missing from %s (e.g. %s); going on without them",
                        split, len(missing), len(names), self.image_dir(), missing[0])
        if not present:
            raise CaptionError(f"{split} split: none of its {len(names)} photos is in {self.image_dir()}")
        return present


def seeded_split(names: list[str], split: str, seed: int = 0, fraction: float = 0.1) -> list[str]:
    """A reproducible split of image names: shuffled with `seed`, `fraction` each to dev and test, the rest train."""
    shuffled = sorted(set(names))
    random.Random(seed).shuffle(shuffled)
    held = max(1, round(fraction * len(shuffled)))
    cuts = {"dev": (0, held), "test": (held, 2 * held), "train": (2 * held, len(shuffled))}
    start, end = cuts[split]
    return shuffled[start:end]

