"""The README's figure: the example photos with the captions the shipped model writes for them.

    python bench/readme_figures.py          # -> docs/examples.png
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import numpy as np

    from caption_generator.caption import load_captioner
    from caption_generator.features import build_encoder, encode, encoder_weights
    from caption_generator.show import photo_grid, save_figure

    paths = sorted((ROOT / "examples").glob("*.jpg"))
    captioner, input_size = load_captioner()
    encoder = build_encoder(encoder_weights(), input_size)
    features = np.stack([vector for _, vector, _ in encode(paths, encoder, progress=False)])
    greedy = captioner.greedy(features)
    beam = captioner.beam_search(features, beam=5)
    texts = [f"greedy: {g}\nbeam 5: {b}" for g, b in zip(greedy, beam)]
    for path, text in zip(paths, texts):
        print(path.name, text.replace("\n", " | "))
    save_figure(photo_grid(paths, texts, columns=2), ROOT / "docs" / "examples.png")


if __name__ == "__main__":
    main()
