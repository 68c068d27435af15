"""Similar photos: rank a collection by caption text (TF-IDF cosine), by Xception features, or by both,
and draw the matches as a figure."""
from __future__ import annotations

import logging
import os
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import captions_path, clean_caption, clean_descriptions, image_dir, list_images, read_captions
from .files import CaptionError, load_pickle, save_pickle

log = logging.getLogger(__name__)

RANKINGS = ("text", "image", "both")
DEFAULT_THRESHOLD = 0.9
DEFAULT_INDEX = "caption_index.p"
INDEX_VERSION = 1


def _vectorizer(vocabulary: list[str] | None = None):
    """TF-IDF over single words, English stop words left out (every caption has "a", "the", "is")."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words="english", vocabulary=vocabulary, dtype=np.float32)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so dot products are cosines."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass
class Match:
    """A photo of the collection, the caption of it closest to the query's, and its score."""

    name: str
    caption: str
    score: float
    path: Path | None


@dataclass
class Similar:
    """The matches of one query, best first. below_threshold: none reached the threshold, so these
    are the closest ones below it."""

    matches: list[Match]
    by: str
    threshold: float
    below_threshold: bool

    def to_json(self) -> dict:
        return {"by": self.by, "threshold": self.threshold, "below_threshold": self.below_threshold,
                "matches": [{"image": str(m.path or m.name), "caption": m.caption, "score": round(m.score, 4)}
                            for m in self.matches]}

    def describe(self) -> str:
        """The matches as indented lines of score, photo and caption, under a heading."""
        if not self.matches:
            head = "  no similar photos in the collection"
        elif self.below_threshold:
            head = f"  nothing above the threshold {self.threshold:.2f} ({self.by} ranking): the closest below it"
        else:
            head = f"  similar photos ({self.by} ranking, score >= {self.threshold:.2f}):"
        return "\n".join([head] + [f"    {m.score:.3f}  {m.path or m.name}  {m.caption}" for m in self.matches])


class CaptionIndex:
    """A collection of photos indexed for similarity queries: the TF-IDF vectors of their cleaned
    captions (rows grouped by photo) and, if given, their L2-normalised Xception features."""

    def __init__(self, photos: list[str], captions: list[str], starts: np.ndarray, vectorizer, matrix,
                 features: np.ndarray | None, folder: str | None, source: dict | None = None):
        self.photos, self.captions, self.starts = photos, captions, starts
        self.vectorizer, self.matrix, self.features = vectorizer, matrix, features
        self.folder, self.source = folder, source or {}
        self.position = {name: i for i, name in enumerate(photos)}

    @classmethod
    def build(cls, descriptions: dict[str, list[str]], features: dict[str, np.ndarray] | None = None,
              folder: str | os.PathLike | None = None, source: dict | None = None) -> "CaptionIndex":
        """Index {photo: [cleaned captions]} and, for the image ranking, {photo: features}."""
        photos = sorted(name for name, texts in descriptions.items() if texts)
        if not photos:
            raise CaptionError("no captions to index")
        captions = [c for name in photos for c in descriptions[name]]
        starts = np.cumsum([0] + [len(descriptions[name]) for name in photos[:-1]])
        vectorizer = _vectorizer()
        try:
            matrix = vectorizer.fit_transform(captions).tocsr()
        except ValueError:
            raise CaptionError("the captions have no words besides stop words; nothing to index") from None
        vectors = None
        if features is not None:
            missing = [name for name in photos if name not in features]
            if missing:
                log.warning("no features for %d of the %d photos (e.g. %s): the image ranking puts them last",
                            len(missing), len(photos), missing[0])
            size = len(next(iter(features.values())))
            vectors = _unit_rows(np.stack([features.get(name, np.zeros(size, np.float32)) for name in photos]))
        return cls(photos, captions, starts, vectorizer, matrix, vectors,
                   str(Path(folder).resolve()) if folder else None, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index as a plain-data pickle (arrays, lists, dicts), atomically."""
        m = self.matrix
        save_pickle({"version": INDEX_VERSION, "photos": self.photos, "captions": self.captions,
                     "starts": self.starts, "vocabulary": self.vectorizer.get_feature_names_out().tolist(),
                     "idf": self.vectorizer.idf_, "data": m.data, "indices": m.indices, "indptr": m.indptr,
                     "shape": list(m.shape), "features": self.features, "folder": self.folder,
                     "source": self.source}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CaptionIndex":
        """Read an index written by save()."""
        from scipy.sparse import csr_matrix

        saved = load_pickle(path)
        if not isinstance(saved, dict) or saved.get("version") != INDEX_VERSION:
            raise CaptionError(f"{path}: not a caption index of this version (rebuild it with the index command)")
        vectorizer = _vectorizer(saved["vocabulary"])
        vectorizer.idf_ = saved["idf"]
        matrix = csr_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=tuple(saved["shape"]))
        return cls(saved["photos"], saved["captions"], saved["starts"], vectorizer, matrix,
                   saved["features"], saved["folder"], saved["source"])

    def __len__(self) -> int:
        return len(self.photos)

    def default_by(self) -> str:
        """The ranking used when none is asked for: both with photo features, else text."""
        return "both" if self.features is not None else "text"

    def _caption_scores(self, caption: str) -> np.ndarray:
        """The cosine of the caption's TF-IDF vector with every caption of the collection."""
        query = self.vectorizer.transform([clean_caption(caption)])
        return (self.matrix @ query.T).toarray().ravel()

    def scores(self, caption: str, vector: np.ndarray | None = None, by: str = "text"
               ) -> tuple[np.ndarray, np.ndarray]:
        """Per photo, the similarity to the query (text: the best cosine with its captions; image: the
        cosine of the features; both: their mean), and the per-caption text cosines."""
        if by not in RANKINGS:
            raise CaptionError(f"unknown ranking {by!r}; choose from {', '.join(RANKINGS)}")
        caption_scores = self._caption_scores(caption)
        text = np.maximum.reduceat(caption_scores, self.starts)
        if by == "text":
            return text, caption_scores
        if self.features is None:
            raise CaptionError("the index has no photo features: rebuild it with --features for --by image/both")
        if vector is None:
            raise CaptionError("the image ranking needs the query photo's features")
        image = self.features @ _unit_rows(np.asarray(vector, np.float32)[None])[0]
        return (image if by == "image" else (text + image) / 2), caption_scores

    def query(self, caption: str, vector: np.ndarray | None = None, n: int = 6, by: str = "text",
              threshold: float = DEFAULT_THRESHOLD, exclude: str | None = None) -> Similar:
        """Up to n photos scoring at least `threshold`, best first; if none does, the n closest below it.
        `exclude` (a photo's file name) leaves the query photo's own entry out."""
        scores, caption_scores = self.scores(caption, vector, by)
        order = np.argsort(-scores, kind="stable")
        if exclude in self.position:
            order = order[order != self.position[exclude]]
        above = order[scores[order] >= threshold][:n]
        chosen = above if len(above) else order[:n]
        ends = np.append(self.starts[1:], len(self.captions))
        matches = []
        for i in chosen:
            best = self.starts[i] + int(np.argmax(caption_scores[self.starts[i]:ends[i]]))
            path = Path(self.folder) / self.photos[i] if self.folder else None
            matches.append(Match(self.photos[i], self.captions[best], float(scores[i]), path))
        return Similar(matches, by, threshold, below_threshold=not len(above) and bool(matches))


def _fingerprint(data_root: str | os.PathLike, features: str | os.PathLike | None) -> dict:
    """What an index was built from, to tell when a saved one is out of date."""
    def stamp(path: Path) -> list:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    return {"captions": stamp(captions_path(data_root)), "folder": str(image_dir(data_root).resolve()),
            "features": stamp(Path(features)) if features else None}


def build_index(data_root: str | os.PathLike, features: str | os.PathLike | None = None) -> CaptionIndex:
    """Index a Flickr8k data root: the photos in its image folder, their cleaned reference captions
    and, with a features file, their Xception features."""
    from .features import load_features

    folder = image_dir(data_root)
    present = {p.name for p in list_images(folder)}
    descriptions = clean_descriptions(read_captions(captions_path(data_root)))
    descriptions = {name: texts for name, texts in descriptions.items() if name in present}
    vectors = load_features(features) if features else None
    return CaptionIndex.build(descriptions, vectors, folder, _fingerprint(data_root, features))


def open_index(path: str | os.PathLike = DEFAULT_INDEX, data_root: str | os.PathLike | None = None,
               features: str | os.PathLike | None = None) -> CaptionIndex:
    """The saved index at `path`. With `data_root`, it is (re)built from the data root (and features)
    and saved first if it is missing or was built from other files."""
    path = Path(path)
    if data_root is None:
        if not path.is_file():
            raise CaptionError(f"{path}: no caption index; give --data-root (a Flickr8k folder) to build one")
        return CaptionIndex.load(path)
    if path.is_file():
        index = CaptionIndex.load(path)
        if index.source == _fingerprint(data_root, features):
            return index
        log.info("%s was built from other files; rebuilding it", path)
    index = build_index(data_root, features)
    index.save(path)
    log.info("indexed %d captions of %d photos -> %s", len(index.captions), len(index), path)
    return index


def _show_photo(ax, path: Path | None) -> None:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((400, 400))
            ax.imshow(img)
    except (OSError, ValueError, TypeError, Image.DecompressionBombError):
        ax.text(0.5, 0.5, "photo not found", ha="center", va="center", color="gray", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def similar_figure(queries: Sequence[tuple[Path, str, Similar]]):
    """A matplotlib Figure with one row per query: its photo and caption, then its matches with their
    caption and score; a row whose matches are below the threshold says so in red."""
    from matplotlib.figure import Figure

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


_NOT_NOUNS = {"black", "white", "red", "blue", "green", "yellow", "brown", "orange", "pink", "purple",
              "gray", "grey", "little", "small", "big", "large", "young", "old", "dark", "colorful"}


def main_nouns(references: Sequence[str]) -> set[str]:
    """A photo's main nouns, approximately and without a tagger: the content words (not an English
    stop word, a colour or size word, or an -ing form longer than five letters) used by at least half
    of its cleaned references, or else the most frequent one."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    def content(caption: str) -> set[str]:
        return {w for w in caption.split() if w not in ENGLISH_STOP_WORDS and w not in _NOT_NOUNS
                and not (w.endswith("ing") and len(w) > 5)}

    counts = Counter(w for caption in references for w in content(caption))
    common = {w for w, n in counts.items() if n >= len(references) / 2}
    return common or {w for w, _ in counts.most_common(1)}


def rank_eval(index: CaptionIndex, queries: dict[str, tuple[str, np.ndarray]],
              references: dict[str, list[str]], k: int = 5, seed: int = 0) -> dict[str, float]:
    """The share of top-k matches that are relevant, per ranking (and for k photos drawn at random).

    A query is a photo of the collection, given as {name: (generated caption, features)}; its own entry
    is excluded. A match is relevant when one of its cleaned reference captions contains one of the
    query photo's main nouns (see main_nouns).
    """
    rng = np.random.default_rng(seed)
    words = {name: set(" ".join(texts).split()) for name, texts in references.items()}
    hits: dict[str, list[float]] = {by: [] for by in (*RANKINGS, "random")}
    for name, (caption, vector) in queries.items():
        nouns = main_nouns(references[name])
        for by in RANKINGS:
            found = index.query(caption, vector, k, by, threshold=-np.inf, exclude=name).matches
            hits[by] += [bool(nouns & words[m.name]) for m in found]
        others = [p for p in rng.choice(len(index), k + 1, replace=False) if index.photos[p] != name][:k]
        hits["random"] += [bool(nouns & words[index.photos[p]]) for p in others]
    return {by: round(float(np.mean(h)), 4) for by, h in hits.items()}
