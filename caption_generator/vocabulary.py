"""The vocabulary: words <-> integer ids, with reserved tokens that no cleaned word can equal."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .errors import CaptionError
from .files import load_pickle, save_pickle

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
RESERVED = (PAD, START, END, UNK)  # ids 0..3; cleaning strips "<" and ">", so no word collides
TOKENIZER_FILE = "tokenizer.p"  # the vocabulary's file, in a training run's folder and beside the shipped model


@dataclass
class Vocabulary:
    """Words by id (the reserved tokens first) and the longest caption in tokens, start and end included."""

    words: list[str]
    max_length: int
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(self.words[:len(RESERVED)]) != RESERVED or len(set(self.words)) != len(self.words):
            raise CaptionError("not a vocabulary: reserved tokens missing or words repeated")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """Words seen at least `min_count` times in the (training) captions, most frequent first."""
        captions = list(captions)
        if not captions:
            raise CaptionError("cannot build a vocabulary from no captions")
        counts = Counter(w for c in captions for w in c.split())
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        longest = max(len(c.split()) for c in captions)
        return cls(list(RESERVED) + kept, longest + 2)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def start_id(self) -> int:
        return self.index[START]

    @property
    def end_id(self) -> int:
        return self.index[END]

    def encode(self, caption: str) -> list[int]:
        """A cleaned caption as ids: start, words (unknown ones as <unk>), end."""
        unk = self.index[UNK]
        return [self.start_id] + [self.index.get(w, unk) for w in caption.split()] + [self.end_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text, stopping at the end token and leaving out reserved tokens."""
        words = []
        for i in ids:
            if i == self.end_id:
                break
            if i >= len(RESERVED):
                words.append(self.words[i])
        return " ".join(words)

    def save(self, path: str | os.PathLike) -> None:
        """Write tokenizer.p: a plain-data pickle (loadable with the restricted unpickler)."""
        save_pickle({"words": self.words, "max_length": self.max_length}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Read tokenizer.p."""
        data = load_pickle(path)
        if not isinstance(data, dict) or not isinstance(data.get("words"), list) \
                or not isinstance(data.get("max_length"), int):
            raise CaptionError(f"{path}: not a vocabulary file")
        return cls(data["words"], data["max_length"])
