"""Dataset access for any layout (see layouts/), caption cleaning, descriptions.txt.

Functions taking a `data_root` accept a folder (its layout is detected) or a layouts.Layout.
"""
from __future__ import annotations

import logging
import os
import string
from collections import defaultdict
from pathlib import Path

from .files import CaptionError, write_text
from .layouts import SPLITS, open_layout
from .layouts.flickr8k import CAPTIONS_FILE, IMAGE_DIR_NAMES, SPLIT_FILES, TEXT_DIR  # noqa: F401 (public names)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean_caption(text: str) -> str:
    """Lower-case, strip punctuation, drop tokens with digits or other non-letters.

    One-letter words such as "a" are kept: every reference caption has them.
    """
    words = text.lower().translate(_PUNCTUATION).split()
    return " ".join(w for w in words if w.isalpha())


def image_dir(data_root: str | os.PathLike) -> Path:
    """The photo folder of a data root (for Flickr8k, either spelling of the original zip)."""
    return open_layout(data_root).image_dir()


def captions_path(data_root: str | os.PathLike) -> Path:
    """The caption file of a data root (read it with read_captions)."""
    return open_layout(data_root).captions_path()


def decode_text(path: str | os.PathLike) -> str:
    """A text file's content; bytes that are not UTF-8 are replaced, with a warning."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s: bytes that are not UTF-8 were replaced", path)
        return raw.decode("utf-8", errors="replace")


def _token_lines(text: str, path: str | os.PathLike) -> list[tuple[str, str]]:
    """(image, caption) of each `<image>#<n>\\t<caption>` line; malformed lines are skipped and counted."""
    pairs, skipped = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        image = key.split("#")[0].strip()
        if not tab or not image or not caption.strip():
            skipped += 1
            continue
        pairs.append((image, caption.strip()))
    if skipped:
        log.warning("%s: skipped %d malformed lines (no tab, image name or caption)", path, skipped)
    return pairs


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a caption file into {image: [raw captions]}: a Karpathy JSON (.json), a CSV whose header
    names image and caption, or `<image>#<n>\\t<caption>` lines (Flickr8k.token.txt, descriptions.txt).

    Blank lines are ignored; lines without a tab or an image name are skipped and counted;
    bytes that are not UTF-8 are replaced. Windows line endings are accepted.
    """
    from .layouts import captions_csv, karpathy

    if Path(path).suffix.lower() == ".json":
        return karpathy.read_json_captions(path)
    text = decode_text(path)
    pairs = [(r["image"], r["caption"]) for r in captions_csv.read_rows(text, Path(path))] \
        if captions_csv.is_caption_csv(text) else _token_lines(text, path)
    captions: dict[str, list[str]] = defaultdict(list)
    for image, caption in pairs:
        captions[image].append(caption)
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
    """The image names of a split (train, dev, test) whose photo exists.

    Names of missing photos are dropped with a warning that gives their count.
    """
    return open_layout(data_root).split(split)


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
    """Read and clean a data root's captions and write descriptions.txt.

    Captions of photos that are not in the image folder are kept, with a warning giving their count:
    the splits leave those photos out later.
    """
    layout = open_layout(data_root)
    descriptions = clean_descriptions(layout.captions())
    unknown = [n for n in descriptions if not layout.photo_path(n).is_file()]
    if unknown:
        log.warning("captions name %d photos that are not in %s (e.g. %s); they will not be used",
                    len(unknown), layout.image_dir(), unknown[0])
    save_descriptions(descriptions, out)
    return descriptions


def photo_paths(data_root: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """All photos of the data root, or with `limit` the first N of each split."""
    layout = open_layout(data_root)
    if limit is None:
        return layout.photos()
    return [layout.photo_path(n) for split in SPLITS for n in layout.split(split)[:limit]]


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
