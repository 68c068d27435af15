"""Training settings, kept free of heavy imports so the command line starts fast."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import CaptionError

DEFAULT_OUT_DIR = "models"  # a training run's checkpoints; the shipped model is apart, in models/shipped/
DEFAULT_PLOT = "model.png"  # the drawing of the model
LR_SCHEDULES = ("plateau", "cosine")  # halve after an epoch without dev progress; cosine decay to 0 over the epochs


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
    tie_embeddings: bool = False  # the output layer reuses the word embeddings (transposed) as its weights
    learning_rate: float = 1e-3
    lr_schedule: str = "plateau"  # one of LR_SCHEDULES
    batch_size: int = 64
    epochs: int = 20
    patience: int = 3
    seed: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise CaptionError(f"learning-rate schedule {self.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")


@dataclass
class ScstConfig:
    """Self-critical fine-tuning of a trained run (train --scst); saved as scst.json beside its checkpoints."""

    learning_rate: float = 5e-5
    epochs: int = 10
    photos_per_step: int = 50
    samples: int = 5  # captions sampled per photo; each one's baseline is the mean reward of the others
    seed: int = 0
    limit: int | None = None

