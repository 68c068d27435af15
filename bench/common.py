"""What the benchmarks share: the data root they default to, a split's photos, and timing."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

from caption_generator.layouts import open_layout

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = ROOT.parent / "shared" / "flickr8k"  # the shared Flickr8k copy beside the checkout


def split_photos(data_root: str | Path, split: str, count: int | None = None) -> list[Path]:
    """The first `count` photos of a split of the data root (all of them without `count`)."""
    layout = open_layout(data_root)
    return [layout.photo_path(n) for n in layout.split(split)[:count]]


def timed_call(fn: Callable[[], object]) -> tuple[float, object]:
    """Seconds that one call of fn takes, and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def timed(fn: Callable[[], object]) -> float:
    """Seconds that one call of fn takes."""
    return timed_call(fn)[0]


def median(values: list[float]) -> float:
    return float(statistics.median(values))
