"""Flickr8k data: the standard folder layout, caption cleaning, the official split."""
from __future__ import annotations

import logging
import os
import string
from collections import defaultdict
from pathlib import Path

from .files import CaptionError, write_text

log = logging.getLogger(__name__)

TEXT_DIR = "Flickr8k_text"
CAPTIONS_FILE = "Flickr8k.token.txt"
IMAGE_DIR_NAMES = ("Flicker8k_Dataset", "Flickr8k_Dataset")
SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "dev": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean_caption(text: str) -> str:
    """Lower-case, strip punctuation, drop tokens with digits or other non-letters.

    One-letter words such as "a" are kept: every reference caption has them.
    """
    words = text.lower().translate(_PUNCTUATION).split()
    return " ".join(w for w in words if w.isalpha())


def image_dir(data_root: str | os.PathLike) -> Path:
    """The photo folder under a Flickr8k data root (either spelling of the original zip)."""
    root = Path(data_root)
    for name in IMAGE_DIR_NAMES:
        if (root / name).is_dir():
            return root / name
    raise CaptionError(f"{root}: no image folder ({' or '.join(IMAGE_DIR_NAMES)})")


def captions_path(data_root: str | os.PathLike) -> Path:
    """The original caption file under a data root."""
    path = Path(data_root) / TEXT_DIR / CAPTIONS_FILE
    if not path.is_file():
        raise CaptionError(f"{path}: no such file (is --data-root a Flickr8k folder?)")
    return path


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read `<image>#<n>\\t<caption>` lines into {image: [raw captions]}.

    Blank lines are ignored; lines without a tab or an image name are skipped and counted;
    bytes that are not UTF-8 are replaced. Windows line endings are accepted.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s: bytes that are not UTF-8 were replaced", path)
        text = raw.decode("utf-8", errors="replace")
    captions: dict[str, list[str]] = defaultdict(list)
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        image = key.split("#")[0].strip()
        if not tab or not image or not caption.strip():
            skipped += 1
            continue
        captions[image].append(caption.strip())
    if skipped:
        log.warning("%s: skipped %d malformed lines (no tab, image name or caption)", path, skipped)
    if not captions:
        raise CaptionError(f"{path}: no captions found")
    return dict(captions)


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


def read_split(data_root: str | os.PathLike, split: str) -> list[str]:
    """The image names of an official split whose photo exists in the image folder.

    Names of missing photos are dropped with a warning that gives their count.
    """
    if split not in SPLIT_FILES:
        raise CaptionError(f"unknown split {split!r}; choose from {', '.join(SPLIT_FILES)}")
    path = Path(data_root) / TEXT_DIR / SPLIT_FILES[split]
    if not path.is_file():
        raise CaptionError(f"{path}: no such file")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = list(dict.fromkeys(n for n in names if n))
    folder = image_dir(data_root)
    present = [n for n in names if (folder / n).is_file()]
    if len(present) < len(names):
        missing = sorted(set(names) - set(present))
        log.warning("%s split: %d of %d photos missing from %s (e.g. %s); going on without them",
                    split, len(missing), len(names), folder, missing[0])
    if not present:
        raise CaptionError(f"{split} split: none of its {len(names)} photos is in {folder}")
    return present


def split_descriptions(descriptions: dict[str, list[str]], images: list[str], split: str) -> dict[str, list[str]]:
    """The descriptions of the given images; images without captions are dropped with a warning."""
    chosen = {n: descriptions[n] for n in images if n in descriptions}
    if len(chosen) < len(images):
        log.warning("%s split: %d photos have no caption; going on without them", split, len(images) - len(chosen))
    if not chosen:
        raise CaptionError(f"{split} split: no photo has a caption")
    return chosen


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files in a folder (by suffix), sorted."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def prepare(data_root: str | os.PathLike, out: str | os.PathLike = "descriptions.txt") -> dict[str, list[str]]:
    """Read and clean the Flickr8k captions and write descriptions.txt.

    Captions of photos that are not in the image folder are kept, with a warning giving their count:
    the splits leave those photos out later.
    """
    descriptions = clean_descriptions(read_captions(captions_path(data_root)))
    folder = image_dir(data_root)
    unknown = [n for n in descriptions if not (folder / n).is_file()]
    if unknown:
        log.warning("captions name %d photos that are not in %s (e.g. %s); they will not be used",
                    len(unknown), folder, unknown[0])
    save_descriptions(descriptions, out)
    return descriptions


def photo_paths(data_root: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """All photos of the data root's image folder, or with `limit` the first N of each split."""
    folder = image_dir(data_root)
    if limit is None:
        return list_images(folder)
    return [folder / n for split in SPLIT_FILES for n in read_split(data_root, split)[:limit]]


def verify(data_root: str | os.PathLike, sums_path: str | os.PathLike) -> dict[str, int]:
    """Compare the photos with the original release's sizes and sha256 sums (a TSV of name, size, sha256).

    Returns counts of photos that match, differ and are missing; each kind is logged with an example.
    """
    from .files import sha256_file

    folder = image_dir(data_root)
    found = {"match": [], "differ": [], "missing": []}
    for line in Path(sums_path).read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) != 3 or not fields[1].isdigit():
            continue  # header or blank line
        name, size, digest = fields
        path = folder / name
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
