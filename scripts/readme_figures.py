"""The README's figure: the example photos with the captions the shipped model writes for them.

    python -m scripts.readme_figures          # -> docs/examples.png
"""
from __future__ import annotations

from pathlib import Path

from caption_generator import caption_photos
from caption_generator.show import photo_grid, save_figure

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    paths = sorted((ROOT / "examples").glob("*.jpg"))
    greedy = list(caption_photos(paths, beam=1))
    beam = list(caption_photos(paths, beam=5))
    texts = [f"greedy: {g.caption}\nbeam 5: {b.caption}" for g, b in zip(greedy, beam)]
    for path, text in zip(paths, texts):
        print(path.name, text.replace("\n", " | "))
    save_figure(photo_grid(paths, texts, columns=2), ROOT / "docs" / "examples.png")


if __name__ == "__main__":
    main()
