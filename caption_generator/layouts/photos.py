"""Photo files: which files count as photos, the photos of a folder, and those of the files and folders a user names."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files in a folder (by suffix), sorted."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_photos(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Photo files, and the photos of folders, in the order given -> (photo paths, (input, error message) for
    each input that is neither a file nor a folder with photos in it)."""
    paths, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            paths += found
            if not found:
                errors.append((path, f"{path}: a folder with no photos in it"))
        elif path.is_file():
            paths.append(path)
        else:
            errors.append((path, f"{path}: no such file or folder"))
    return paths, errors
