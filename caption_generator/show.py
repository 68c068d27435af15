"""Figures for the notebook and the README: photos with captions, caption statistics."""
from __future__ import annotations

import os
import textwrap
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image


def photo_grid(photos: Sequence[str | os.PathLike], texts: Sequence[str], columns: int = 3,
               width: int = 38, cell: float = 4.0) -> Figure:
    """Photos in a grid, each with its (wrapped) text underneath."""
    rows = max(1, -(-len(photos) // columns))
    lines = max((sum(len(textwrap.wrap(p, width)) or 1 for p in t.split("\n")) for t in texts), default=1)
    fig = Figure(figsize=(cell * columns, rows * (cell * 0.75 + 0.22 * lines)))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, photo, text in zip(axes, photos, texts):
        with Image.open(photo) as img:
            ax.imshow(np.asarray(img.convert("RGB")))
        wrapped = "\n".join(textwrap.fill(p, width) for p in text.split("\n"))
        ax.set_title(wrapped, fontsize=9, loc="left", y=-0.02, va="top")
    fig.tight_layout()
    return fig


def caption_statistics(descriptions: dict[str, list[str]]) -> tuple[Figure, dict[str, float]]:
    """Histogram of caption lengths and the most frequent words, with summary numbers."""
    captions = [c for texts in descriptions.values() for c in texts]
    lengths = [len(c.split()) for c in captions]
    counts = Counter(w for c in captions for w in c.split())
    fig = Figure(figsize=(11, 3.5))
    left, right = fig.subplots(1, 2)
    left.hist(lengths, bins=range(1, max(lengths) + 2))
    left.set_xlabel("words per caption")
    left.set_ylabel("captions")
    top = counts.most_common(15)
    right.barh([w for w, _ in top][::-1], [n for _, n in top][::-1])
    right.set_xlabel("occurrences")
    right.set_title("most frequent words")
    fig.tight_layout()
    stats = {"photos": len(descriptions), "captions": len(captions), "distinct words": len(counts),
             "words seen at least 5 times": sum(n >= 5 for n in counts.values()),
             "mean words per caption": round(float(np.mean(lengths)), 1), "longest caption": max(lengths)}
    return fig, stats


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a figure atomically."""
    from .files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)
