"""Every figure: photos with captions, caption statistics, loss curves, similar photos; saved atomically."""
from __future__ import annotations

import os
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageOps

from .files import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .similar import Similar


def photo_grid(photos: Sequence[str | os.PathLike], texts: Sequence[str], columns: int = 3,
               width: int = 38, cell: float = 4.0) -> Figure:
    """Photos in a grid, each with its (wrapped) text in its own space underneath: a row of photos, then a
    row of texts as tall as the longest of them, so no text hides behind the next photo."""
    rows = max(1, -(-len(photos) // columns))
    wrapped = ["\n".join(textwrap.fill(p, width) for p in t.split("\n")) for t in texts]
    lines = [max((w.count("\n") + 1 for w in wrapped[r * columns:(r + 1) * columns]), default=1) for r in range(rows)]
    heights = [h for n in lines for h in (cell, 0.18 * n + 0.15)]  # inches: photos, then their 9-point texts
    fig = Figure(figsize=(cell * columns, sum(heights)))
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=heights, left=0.01, right=0.99, top=0.99, bottom=0.01,
                            wspace=0.05, hspace=0.02)
    for i, (photo, text) in enumerate(zip(photos, wrapped)):
        row, column = divmod(i, columns)
        picture, caption = fig.add_subplot(grid[2 * row, column]), fig.add_subplot(grid[2 * row + 1, column])
        for ax in (picture, caption):
            ax.axis("off")
        with Image.open(photo) as img:
            picture.imshow(np.asarray(img.convert("RGB")))
        caption.text(0.0, 1.0, text, transform=caption.transAxes, fontsize=9, va="top", ha="left")
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


def plot_history(history: list[dict], path: str | os.PathLike, series: dict[str, str] | None = None,
                 ylabel: str = "cross-entropy per word") -> Figure:
    """Values per epoch (by default the training and dev loss; `series` maps labels to history keys,
    epochs without the key are left out), saved to `path`; returns the matplotlib Figure."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for label, key in (series or {"train": "loss", "dev": "val_loss"}).items():
        points = [(h["epoch"], h[key]) for h in history if key in h]
        ax.plot([e for e, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def _show_photo(ax: Axes, path: Path | None) -> None:
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((400, 400))
            ax.imshow(img)
    except (OSError, ValueError, TypeError, Image.DecompressionBombError):
        ax.text(0.5, 0.5, "photo not found", ha="center", va="center", color="gray", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def similar_figure(queries: Sequence[tuple[Path, str, Similar]]) -> Figure:
    """A matplotlib Figure with one row per query: its photo and caption, then its matches with their
    caption and score; a row whose matches are below the threshold says so in red."""
    columns = 1 + max((len(s.matches) for _, _, s in queries), default=0)
    fig = Figure(figsize=(2.8 * columns, 3.5 * len(queries)), layout="constrained")
    axes = fig.subplots(len(queries), columns, squeeze=False)
    for row, (path, caption, similar) in zip(axes, queries):
        _show_photo(row[0], path)
        note = (f"nothing >= {similar.threshold:.2f}: closest below" if similar.below_threshold
                else f"{similar.by} ranking, >= {similar.threshold:.2f}")
        row[0].set_title(textwrap.fill(caption, 30) + f"\n[{note}]", fontsize=9, fontweight="bold",
                         color="firebrick" if similar.below_threshold else "black")
        row[0].set_xlabel(path.name, fontsize=8)
        for ax in row[0].spines.values():
            ax.set_edgecolor("royalblue")
            ax.set_linewidth(3)
        for ax, match in zip(row[1:], similar.matches):
            _show_photo(ax, match.path)
            ax.set_title(textwrap.fill(match.caption, 30) + f"\nscore {match.score:.2f}", fontsize=8,
                         color="firebrick" if similar.below_threshold else "black")
        for ax in row[1 + len(similar.matches):]:
            ax.axis("off")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a figure atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)
