"""Caption cleaning, the splits' captions and descriptions.txt, and a check of the photos against the release.

Reading a data root (caption files, splits, photo folders) is the job of layouts/: the functions here take
an open layouts.Layout.
"""
from __future__ import annotations

import logging
import os
import string
from pathlib import Path

from .errors import CaptionError
from .files import sha256_file, write_text
from .layouts import SPLITS, Layout, read_captions

log = logging.getLogger(__name__)

DEFAULT_DESCRIPTIONS = "descriptions.txt"

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean_caption(text: str) -> str:
    """Lower-case, strip punctuation, drop tokens with digits or other non-letters.

    One-letter words such as "a" are kept: every reference caption has them.
    """
    words = text.lower().translate(_PUNCTUATION).split()
    return " ".join(w for w in words if w.isalpha())


def clean_descriptions(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    """Clean every caption; captions left empty by cleaning are dropped."""
    cleaned = {}
    for image, texts in captions.items():
        kept = [c for c in (clean_caption(t) for t in texts) if c]
        if kept:
            cleaned[image] = kept
    return cleaned


def save_descriptions(descriptions: dict[str, list[str]], path: str | os.PathLike) -> None:
    """Write `image\\tcaption` lines (the tutorials' descriptions.txt), atomically."""
    lines = [f"{image}\t{caption}" for image, texts in descriptions.items() for caption in texts]
    write_text(path, "\n".join(lines) + "\n")


def load_descriptions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read descriptions.txt back into {image: [cleaned captions]}."""
    if not Path(path).is_file():
        raise CaptionError(f"{path}: no such file (run the prepare step first)")
    return read_captions(path)


def split_descriptions(descriptions: dict[str, list[str]], images: list[str], split: str) -> dict[str, list[str]]:
    """The descriptions of the given images; images without captions are dropped with a warning."""
    chosen = {n: descriptions[n] for n in images if n in descriptions}
    if len(chosen) < len(images):
        log.warning("%s split: %d photos have no caption; going on without them", split, len(images) - len(chosen))
    if not chosen:
        raise CaptionError(f"{split} split: no photo has a caption")
    return chosen


def load_splits(layout: Layout, descriptions_path: str | os.PathLike, limit: int | None = None
                ) -> dict[str, dict[str, list[str]]]:
    """The cleaned captions of the train and dev splits (first `limit` photos of each) from descriptions.txt."""
    descriptions = load_descriptions(descriptions_path)
    return {s: split_descriptions(descriptions, layout.split(s)[:limit], s) for s in ("train", "dev")}


def prepare(layout: Layout, out: str | os.PathLike = DEFAULT_DESCRIPTIONS) -> dict[str, list[str]]:
    """Read and clean a data root's captions and write descriptions.txt.

    Captions of photos that are not in the image folder are kept, with a warning giving their count:
    the splits leave those photos out later.
    """
    descriptions = clean_descriptions(layout.captions())
    unknown = [n for n in descriptions if not layout.photo_path(n).is_file()]
    if unknown:
        log.warning("captions name %d photos that are not in %s (e.g. %s); they will not be used",
                    len(unknown), layout.image_dir(), unknown[0])
    save_descriptions(descriptions, out)
    return descriptions


def photo_paths(layout: Layout, limit: int | None = None) -> list[Path]:
    """All photos of the data root, or with `limit` the first N of each split."""
    if limit is None:
        return layout.photos()
    return [layout.photo_path(n) for split in SPLITS for n in layout.split(split)[:limit]]


def verify(layout: Layout, sums_path: str | os.PathLike) -> dict[str, int]:
    """Compare the photos with the original release's sizes and sha256 sums (a TSV of name, size, sha256).

    Returns counts of photos that match, differ and are missing; each kind is logged with an example.
    """
    found = {"match": [], "differ": [], "missing": []}
    for line in Path(sums_path).read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) != 3 or not fields[1].isdigit():
            continue  # header or blank line
        name, size, digest = fields
        path = layout.photo_path(name)
        if not path.is_file():
            found["missing"].append(name)
        elif path.stat().st_size != int(size) or sha256_file(path) != digest:
            found["differ"].append(name)
        else:
            found["match"].append(name)
    for kind in ("differ", "missing"):
        if found[kind]:
            log.warning("%d photos %s (e.g. %s)", len(found[kind]), kind, found[kind][0])
    return {kind: len(names) for kind, names in found.items()}
