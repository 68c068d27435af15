"""Caption text: decoding a file's bytes, `<image>#<n>\\t<caption>` lines, and captions grouped by photo."""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from ..errors import CaptionError

log = logging.getLogger(__name__)


def decode_text(path: str | os.PathLike) -> str:
    """A text file's content; bytes that are not UTF-8 are replaced, with a warning."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s: bytes that are not UTF-8 were replaced", path)
        return raw.decode("utf-8", errors="replace")


def token_lines(text: str, path: str | os.PathLike) -> list[tuple[str, str]]:
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


def captions_by_image(pairs: Iterable[tuple[str, str]], path: str | os.PathLike) -> dict[str, list[str]]:
    """{image: [captions]} of (image, caption) pairs read from `path`; none at all is an error."""
    captions: dict[str, list[str]] = defaultdict(list)
    for image, caption in pairs:
        captions[image].append(caption)
    if not captions:
        raise CaptionError(f"{path}: no captions found")
    return dict(captions)


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read `<image>#<n>\\t<caption>` lines (Flickr8k.token.txt, descriptions.txt) into {image: [captions]}.

    Blank lines are ignored; lines without a tab or an image name are skipped and counted;
    bytes that are not UTF-8 are replaced. Windows line endings are accepted.
    """
    return captions_by_image(token_lines(decode_text(path), path), path)
