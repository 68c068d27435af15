"""CIDEr-D (Vedantam et al. 2015) as pycocoevalcap and self-critical.pytorch compute it, vectorised.

Each sentence, with an end marker appended (self-critical.pytorch scores its eos token too, so a
caption that stops mid-phrase loses the n-grams ending in it), is a tf-idf vector of its 1..4-grams;
the document frequencies come from one fixed set of references (the train split's), counted once.
A candidate's score is 10 x the mean over its references and n of the clipped cosine
sum(min(c, r) * r) / (|c| |r|), times a gaussian penalty on the length difference (sigma 6).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from .vocabulary import END

WIDTH = 2 ** 31 - 1  # columns of every vector: room for any number of n-grams, one int32 index each


class CiderD:
    """CIDEr-D scores with document frequencies from `df_references` (each photo's reference captions)."""

    def __init__(self, df_references: Iterable[Sequence[str]], n: int = 4, sigma: float = 6.0):
        self.n, self.sigma = n, sigma
        df: Counter = Counter()
        photos = 0
        for references in df_references:
            df.update(set().union(*(self._ngrams(r) for r in references)))
            photos += 1
        self.log_photos = np.log(float(photos))
        self.idf = {gram: self.log_photos - np.log(count) for gram, count in df.items()}  # unseen n-grams: log_photos
        self._columns: dict[tuple[str, ...], int] = {}  # n-gram -> column; column % n is its order - 1
        self._cache: dict[tuple[str, ...], tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = {}

    def _ngrams(self, text: str) -> Counter:
        words = text.split() + [END]
        return Counter(tuple(words[i:i + k]) for k in range(1, self.n + 1) for i in range(len(words) - k + 1))

    def _column(self, gram: tuple[str, ...]) -> int:
        column = self._columns.get(gram)
        if column is None:
            column = self._columns[gram] = len(self._columns) * self.n + len(gram) - 1
        return column

    def _per_order(self, rows: np.ndarray, columns: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
        """Sums of `values` per row and n-gram order: (count, n)."""
        return np.bincount(rows * self.n + columns % self.n, values, minlength=count * self.n).reshape(count, self.n)

    def _vectors(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """The sentences' tf-idf vectors (one row each), their norms per order (rows, n) and lengths in words."""
        indptr, columns, values = [0], [], []
        for text in texts:
            for gram, count in self._ngrams(text).items():
                columns.append(self._column(gram))
                values.append(count * self.idf.get(gram, self.log_photos))
            indptr.append(len(columns))
        matrix = sp.csr_matrix((np.array(values, float), np.array(columns, np.int32), np.array(indptr)),
                               shape=(len(texts), WIDTH))
        matrix.sort_indices()  # scipy's elementwise operations need sorted indices to run in O(nonzeros)
        rows = np.repeat(np.arange(len(texts)), np.diff(matrix.indptr))
        norms = np.sqrt(self._per_order(rows, matrix.indices, matrix.data ** 2, len(texts)))
        return matrix, norms, np.array([len(t.split()) for t in texts], float)

    def _reference_vectors(self, references: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        key = tuple(references)
        if key not in self._cache:  # each photo's references are vectorised once
            self._cache[key] = self._vectors(references)
        return self._cache[key]

    def score(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
        """CIDEr-D of each candidate caption against its own reference captions (cleaned text)."""
        if not candidates:
            return np.zeros(0)
        candidate, candidate_norms, candidate_lengths = self._vectors(candidates)
        blocks = [self._reference_vectors(r) for r in references]
        reference = sp.vstack([b[0] for b in blocks], format="csr")
        reference_norms = np.concatenate([b[1] for b in blocks])
        reference_lengths = np.concatenate([b[2] for b in blocks])
        owner = np.repeat(np.arange(len(candidates)), [len(b[2]) for b in blocks])  # candidate of each reference
        overlap = candidate[owner].minimum(reference).multiply(reference).tocoo()  # clipped counts
        sums = self._per_order(overlap.row, overlap.col, overlap.data, len(owner))
        norms = candidate_norms[owner] * reference_norms
        cosine = np.divide(sums, norms, out=np.zeros(norms.shape), where=norms > 0)
        penalty = np.exp(-(candidate_lengths[owner] - reference_lengths) ** 2 / (2 * self.sigma ** 2))
        per_reference = cosine.mean(axis=1) * penalty
        return 10 * np.bincount(owner, per_reference) / np.bincount(owner)
