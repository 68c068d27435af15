"""Reading a data root: one module per layout (its caption format, splits and photo folder), the layout
detected from the files in the folder; and which files are photos. Open a data root once with open_layout
and pass the Layout on: every photo's path comes from Layout.photo_path."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CaptionError
from .base import SPLITS, Layout, seeded_split
from .captions_csv import CaptionsCsv
from .flickr8k import Flickr8k
from .folder_csv import FolderCsv
from .karpathy import Karpathy
from .photos import find_photos, list_images
from .text import read_captions

LAYOUTS = {cls.name: cls for cls in (Flickr8k, Karpathy, CaptionsCsv, FolderCsv)}  # in the order detection tries them

__all__ = ["LAYOUTS", "SPLITS", "Layout", "find_photos", "list_images", "open_layout", "read_captions", "seeded_split"]


def open_layout(root: str | os.PathLike, name: str | None = None) -> Layout:
    """The data root read in the named layout, or in the first layout whose files it has.

    A root that matches no layout is read as Flickr8k, whose errors then say what is missing.
    """
    if isinstance(root, Layout) and name in (None, root.name):
        return root
    if name is not None:
        if name not in LAYOUTS:
            raise CaptionError(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}")
        return LAYOUTS[name](root)
    path = Path(root)
    return next((cls(path) for cls in LAYOUTS.values() if cls.detect(path)), Flickr8k(path))
