"""Training settings, kept free of heavy imports so the command line starts fast."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as config.json beside its checkpoints."""

    min_count: int = 5
    units: int = 256
    embedding_dim: int = 256
    dropout: float = 0.5          # on the words' embeddings
    photo_dropout: float = 0.0    # on the photo features: none is better on dev (issue 11; Tanti et al. 2018)
    normalize_photo: bool = True  # scale each photo's features to unit length first: better on dev, likewise
    label_smoothing: float = 0.0
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    patience: int = 3
    seed: int = 0
    limit: int | None = None


@dataclass
class ScstConfig:
    """Self-critical fine-tuning of a trained run (train --scst); saved as scst.json beside its checkpoints."""

    learning_rate: float = 5e-5
    epochs: int = 10
    photos_per_step: int = 50
    samples: int = 5  # captions sampled per photo; each one's baseline is the mean reward of the others
    seed: int = 0
    limit: int | None = None


def cluster_position() -> tuple[int, int]:
    """(this worker's index, number of workers) from $TF_CONFIG, as tf.distribute reads it: the chief
    (if any) first, then the workers in order; (0, 1) without TF_CONFIG. Index 0 is the chief."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1:
        return 0, 1
    index = int(task.get("index", 0)) + (chiefs if task.get("type") == "worker" else 0)
    return index, chiefs + workers
