"""Dataset layouts: one reader interface, one module per layout, the layout detected from the data root."""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

from ..files import CaptionError

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SPLIT_NAMES = {"val": "dev", "restval": "train"}  # Karpathy's split names -> ours
LAYOUTS = ("flickr8k", "karpathy", "captions_csv", "folder_csv")  # the order detection tries them in


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
        """{image: [raw captions]}."""
        from ..data import read_captions

        return read_captions(self.captions_path())

    def photo_path(self, name: str) -> Path:
        """Where the photo of that name is."""
        return self.image_dir() / name

    def photos(self) -> list[Path]:
        """Every photo of the data root."""
        from ..data import list_images

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


def layouts() -> dict[str, type[Layout]]:
    """The layout classes by name, in the order detection tries them."""
    from .captions_csv import CaptionsCsv
    from .flickr8k import Flickr8k
    from .folder_csv import FolderCsv
    from .karpathy import Karpathy

    classes = {cls.name: cls for cls in (Flickr8k, Karpathy, CaptionsCsv, FolderCsv)}
    return {name: classes[name] for name in LAYOUTS}


def open_layout(root: str | os.PathLike, name: str | None = None) -> Layout:
    """The data root read in the named layout, or in the first layout whose files it has.

    A root that matches no layout is read as Flickr8k, whose errors then say what is missing.
    """
    if isinstance(root, Layout) and name in (None, root.name):
        return root
    known = layouts()
    if name is not None:
        if name not in known:
            raise CaptionError(f"unknown layout {name!r}; choose from {', '.join(known)}")
        return known[name](root)
    path = Path(root)
    return next((cls(path) for cls in known.values() if cls.detect(path)), known["flickr8k"](path))
