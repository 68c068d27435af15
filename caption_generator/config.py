"""Training settings, kept free of heavy imports so the command line starts fast."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as config.json beside its checkpoints."""

    min_count: int = 5
    units: int = 256
    embedding_dim: int = 256
    dropout: float = 0.5
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    patience: int = 3
    seed: int = 0
    limit: int | None = None
