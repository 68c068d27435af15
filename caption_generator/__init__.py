"""Image caption generator: Xception photo features and a merge-model LSTM decoder, on Keras 3.

    from caption_generator import caption_photos
    for photo in caption_photos(["examples/"], beam=5):
        print(photo.path, photo.caption)

Importing the package is light: TensorFlow is imported when a model is first loaded.
"""
from .errors import CaptionError
from .pipeline import (CaptionPipeline, Captioned, caption_photos, compute_features, evaluate_split, load_captioner,
                       run_self_critical, run_training)

__all__ = ["CaptionError", "CaptionPipeline", "Captioned", "caption_photos", "compute_features", "evaluate_split",
           "load_captioner", "run_self_critical", "run_training"]
