"""How far to trust a caption: the model's confidence in it, and how familiar the photo is (issue 16).

- confidence: the geometric mean of the probabilities the decoding distribution gave the caption's tokens
  (its words and its end), exp(mean log-probability), between 0 and 1. Of the signals tried it ranks the
  dev captions best by their CIDEr-D (scripts/calibrate_confidence.py).
- familiarity: the cosine of the photo's Xception features to the nearest of the centres of the training
  photos' features (k-means of the unit-length features), between -1 and 1.

A caption is flagged when either is below its threshold. The centres and the thresholds, chosen on the dev
split, are one file (`confidence.npz`) that ships with the model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import CaptionError, atomic_path

CALIBRATION_FILE = "confidence.npz"
CENTRES = 256  # k-means centres of the training photos: 2 MB as float32


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def fit_centres(train_features: np.ndarray, count: int = CENTRES, seed: int = 0) -> np.ndarray:
    """Unit-length k-means centres of the training photos' unit-length features: (count, 2048)."""
    from sklearn.cluster import KMeans

    kmeans = KMeans(count, n_init=1, random_state=seed).fit(unit_rows(train_features))
    return unit_rows(kmeans.cluster_centers_)


def familiarity(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each photo's cosine to the nearest centre."""
    return (unit_rows(features) @ centres.T).max(axis=1)


@dataclass(frozen=True)
class Assessment:
    """How far to trust one caption: its confidence and its photo's familiarity (None without a
    calibration), and whether each is below its threshold."""

    confidence: float
    familiarity: float | None
    unsure: bool
    unfamiliar: bool

    @property
    def flagged(self) -> bool:
        return self.unsure or self.unfamiliar

    @property
    def warning(self) -> str | None:
        """One line for a flagged caption, else None."""
        reasons = (["the photo is unlike the training photos"] if self.unfamiliar else []) + \
                  (["the model is unsure of the caption"] if self.unsure else [])
        return "; ".join(reasons) + ": the caption may well be wrong" if reasons else None


@dataclass(frozen=True)
class Calibration:
    """The training photos' centres and the thresholds below which a caption is flagged. The confidence
    threshold depends on the decoding: one per calibrated beam width, at length penalty 1."""

    centres: np.ndarray
    familiarity_threshold: float
    beams: np.ndarray
    confidence_thresholds: np.ndarray

    def confidence_threshold(self, beam: int, length_penalty: float) -> float | None:
        """The threshold for this decoding, or None if it was not calibrated."""
        if length_penalty != 1.0 or beam not in self.beams:
            return None
        return float(self.confidence_thresholds[list(self.beams).index(beam)])

    def save(self, path: str | os.PathLike) -> None:
        """Write the calibration atomically (an .npz of plain arrays)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, centres=self.centres.astype(np.float32), familiarity_threshold=self.familiarity_threshold,
                     beams=self.beams, confidence_thresholds=self.confidence_thresholds)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a calibration written by save; anything else raises CaptionError."""
        try:
            with np.load(path, allow_pickle=False) as f:
                calibration = cls(f["centres"], float(f["familiarity_threshold"]), f["beams"].astype(int),
                                  f["confidence_thresholds"].astype(float))
        except Exception as e:  # a damaged zip raises many types (BadZipFile, KeyError, ValueError, ...)
            raise CaptionError(f"{path}: not a confidence calibration ({type(e).__name__})") from None
        if calibration.centres.ndim != 2 or len(calibration.beams) != len(calibration.confidence_thresholds):
            raise CaptionError(f"{path}: not a confidence calibration (arrays of the wrong shapes)")
        return calibration


def assess(mean_log_probs: np.ndarray, features: np.ndarray, calibration: Calibration | None,
           beam: int, length_penalty: float) -> list[Assessment]:
    """The assessments of captions decoded with this beam and length penalty, from their mean
    log-probabilities (Captioner.scored_beam_search) and their photos' features."""
    confidences = np.exp(np.asarray(mean_log_probs, float))
    if calibration is None:
        return [Assessment(float(c), None, False, False) for c in confidences]
    threshold = calibration.confidence_threshold(beam, length_penalty)
    return [Assessment(float(c), float(f), bool(threshold is not None and c < threshold),
                       bool(f < calibration.familiarity_threshold))
            for c, f in zip(confidences, familiarity(features, calibration.centres))]


def calibration_beside(model_path: str | os.PathLike) -> Calibration | None:
    """The calibration in the folder of a model file, if there is one."""
    path = Path(model_path).parent / CALIBRATION_FILE
    return Calibration.load(path) if path.is_file() else None
