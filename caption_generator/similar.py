"""Similar photos: rank a collection by caption text (TF-IDF cosine), by Xception features, or by both."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import clean_caption, clean_descriptions
from .errors import CaptionError
from .files import load_pickle, save_pickle
from .layouts import Layout

log = logging.getLogger(__name__)

RANKINGS = ("text", "image", "both")
DEFAULT_THRESHOLD = 0.9
DEFAULT_INDEX = "caption_index.p"
INDEX_VERSION = 2  # 2: the path of each photo (1 had one folder for all)


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

    def heading(self) -> str:
        """What the matches are, in one line: the similar photos, the closest ones below the threshold, or none."""
        if not self.matches:
            return "no similar photos in the collection"
        if self.below_threshold:
            return f"nothing above the threshold {self.threshold:.2f} ({self.by} ranking): the closest below it"
        return f"similar photos ({self.by} ranking, score >= {self.threshold:.2f})"

    def describe(self) -> str:
        """The matches as indented lines of score, photo and caption, under the heading."""
        colon = ":" if self.matches and not self.below_threshold else ""
        return "\n".join([f"  {self.heading()}{colon}"] + [f"    {m.score:.3f}  {m.path or m.name}  {m.caption}"
                                                           for m in self.matches])


class CaptionIndex:
    """A collection of photos indexed for similarity queries: the TF-IDF vectors of their cleaned
    captions (rows grouped by photo) and, if given, their L2-normalised Xception features."""

    def __init__(self, photos: list[str], captions: list[str], starts: np.ndarray, vectorizer, matrix,
                 features: np.ndarray | None, paths: list[str] | None, source: dict | None = None):
        self.photos, self.captions, self.starts = photos, captions, starts
        self.vectorizer, self.matrix, self.features = vectorizer, matrix, features
        self.paths, self.source = paths, source or {}
        self.position = {name: i for i, name in enumerate(photos)}

    @classmethod
    def build(cls, descriptions: dict[str, list[str]], features: dict[str, np.ndarray] | None = None,
              layout: Layout | None = None, source: dict | None = None) -> "CaptionIndex":
        """Index {photo: [cleaned captions]} and, for the image ranking, {photo: features}; with the
        collection's layout, each match says where its photo is."""
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
        paths = [os.path.abspath(layout.photo_path(name)) for name in photos] if layout else None
        return cls(photos, captions, starts, vectorizer, matrix, vectors, paths, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index as a plain-data pickle (arrays, lists, dicts), atomically."""
        m = self.matrix
        save_pickle({"version": INDEX_VERSION, "photos": self.photos, "captions": self.captions,
                     "starts": self.starts, "vocabulary": self.vectorizer.get_feature_names_out().tolist(),
                     "idf": self.vectorizer.idf_, "data": m.data, "indices": m.indices, "indptr": m.indptr,
                     "shape": list(m.shape), "features": self.features, "paths": self.paths,
                     "source": self.source}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CaptionIndex":
        """Read an index written by save()."""
        return cls.from_saved(load_pickle(path), path)

    @classmethod
    def from_saved(cls, saved: object, path: str | os.PathLike) -> "CaptionIndex":
        """The index of what save() wrote to `path`, loaded."""
        from scipy.sparse import csr_matrix

        if not _is_current(saved):
            raise CaptionError(f"{path}: not a caption index of this version (rebuild it with the index command)")
        vectorizer = _vectorizer(saved["vocabulary"])
        vectorizer.idf_ = saved["idf"]
        matrix = csr_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=tuple(saved["shape"]))
        return cls(saved["photos"], saved["captions"], saved["starts"], vectorizer, matrix,
                   saved["features"], saved["paths"], saved["source"])

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
            path = Path(self.paths[i]) if self.paths else None
            matches.append(Match(self.photos[i], self.captions[best], float(scores[i]), path))
        return Similar(matches, by, threshold, below_threshold=not len(above) and bool(matches))


def _is_current(saved: object) -> bool:
    """Whether a loaded pickle is an index of this version."""
    return isinstance(saved, dict) and saved.get("version") == INDEX_VERSION


def _fingerprint(layout: Layout, features: str | os.PathLike | None) -> dict:
    """What an index was built from, to tell when a saved one is out of date."""
    def stamp(path: Path) -> list:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    return {"captions": stamp(layout.captions_path()), "folder": str(layout.image_dir().resolve()),
            "features": stamp(Path(features)) if features else None}


def build_index(layout: Layout, features: str | os.PathLike | None = None) -> CaptionIndex:
    """Index a data root: its photos, their cleaned reference captions and, with a features file, their
    Xception features."""
    from .features import load_features

    present = {p.name for p in layout.photos()}
    descriptions = {name: texts for name, texts in clean_descriptions(layout.captions()).items() if name in present}
    vectors = load_features(features) if features else None
    return CaptionIndex.build(descriptions, vectors, layout, _fingerprint(layout, features))


def open_index(path: str | os.PathLike = DEFAULT_INDEX, layout: Layout | None = None,
               features: str | os.PathLike | None = None) -> CaptionIndex:
    """The saved index at `path`. With a data root's `layout`, it is (re)built from the data root (and
    features) and saved first if it is missing, of an older version or built from other files."""
    path = Path(path)
    saved = load_pickle(path) if path.is_file() else None
    if layout is None:
        if saved is None:
            raise CaptionError(f"{path}: no caption index; give --data-root (a Flickr8k folder) to build one")
        return CaptionIndex.from_saved(saved, path)
    if _is_current(saved) and saved["source"] == _fingerprint(layout, features):
        return CaptionIndex.from_saved(saved, path)
    if saved is not None:
        log.info("%s was built from other files; rebuilding it", path)
    index = build_index(layout, features)
    index.save(path)
    log.info("indexed %d captions of %d photos -> %s", len(index.captions), len(index), path)
    return index
