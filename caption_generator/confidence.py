"""How far to trust a caption: the model's confidence in it, and how familiar the photo is (issue 16).

- confidence: the geometric mean of the probabilities the decoding distribution gave the caption's tokens
  (its words and its end), exp(mean log-probability), between 0 and 1. Of the signals tried it ranks the
  dev captions best by their CIDEr-D (scripts/calibrate_confidence.py).
- familiarity: the mean cosine of the photo's Xception features to those of its NEIGHBOURS nearest training
  photos, as far as the DIMENSIONS-dimensional subspace that holds most of the training photos' features
  sees it (the part of a photo's features outside it counts for nothing, so a photo unlike them scores low).

A caption is flagged when either is below its threshold. The training photos' summary and the thresholds,
chosen on the dev split, are one file (`confidence.npz`, 4 MB) that ships with the model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import CaptionError
from .files import atomic_path

CALIBRATION_FILE = "confidence.npz"
DIMENSIONS = 256  # the subspace the training photos are kept in: 4 MB as float16
NEIGHBOURS = 5  # familiarity is the mean cosine to this many nearest training photos


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def summarize(train_features: np.ndarray, dimensions: int = DIMENSIONS) -> tuple[np.ndarray, np.ndarray]:
    """The training photos, compactly: the `dimensions` directions holding most of their unit-length
    features' energy (the top eigenvectors of their second-moment matrix), and the photos' unit-length
    features projected on them; both float16."""
    units = unit_rows(train_features).astype(np.float64)
    _, vectors = np.linalg.eigh(units.T @ units)  # eigenvalues ascending
    basis = vectors[:, ::-1][:, :dimensions].T.astype(np.float16)
    return basis, (units @ basis.T.astype(np.float64)).astype(np.float16)


def familiarity(features: np.ndarray, basis: np.ndarray, photos: np.ndarray) -> np.ndarray:
    """Each photo's mean cosine to its NEIGHBOURS nearest training photos, from their projections on the
    summary's subspace."""
    cosines = (unit_rows(features) @ basis.T.astype(np.float32)) @ photos.T.astype(np.float32)
    return -np.partition(-cosines, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS].mean(axis=1)


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

    def to_json(self) -> dict:
        return {"confidence": round(self.confidence, 4),
                "familiarity": None if self.familiarity is None else round(self.familiarity, 4),
                "flagged": self.flagged, "warning": self.warning}


@dataclass(frozen=True)
class Calibration:
    """The training photos' summary (see summarize) and the thresholds below which a caption is flagged. The
    confidence threshold depends on the decoding: one per calibrated beam width, at length penalty 1."""

    basis: np.ndarray
    photos: np.ndarray
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
            np.savez(f, basis=self.basis, photos=self.photos, familiarity_threshold=self.familiarity_threshold,
                     beams=self.beams, confidence_thresholds=self.confidence_thresholds)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a calibration written by save; anything else raises CaptionError."""
        try:
            with np.load(path, allow_pickle=False) as f:
                calibration = cls(f["basis"], f["photos"], float(f["familiarity_threshold"]), f["beams"].astype(int),
                                  f["confidence_thresholds"].astype(float))
        except Exception as e:  # a damaged zip raises many types (BadZipFile, KeyError, ValueError, ...)
            raise CaptionError(f"{path}: not a confidence calibration ({type(e).__name__})") from None
        if calibration.basis.ndim != 2 or calibration.photos.shape[1:] != calibration.basis.shape[:1] \
                or len(calibration.beams) != len(calibration.confidence_thresholds):
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
            for c, f in zip(confidences, familiarity(features, calibration.basis, calibration.photos))]
