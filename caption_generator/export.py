"""Export to ONNX for onnx_runtime (needs TensorFlow, tf2onnx and onnx): the encoder into the cache, keyed by
its weights, and a model's decoders into the model's folder. Each file is written atomically, with metadata
saying what it is, so that a half-written or foreign file is never taken for ours."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

from .files import atomic_path
from .onnx_runtime import (DECODER_FILES, DECODER_START, DECODER_STEP, ENCODER, FEATURES, INPUT_SIZE, KIND,
                           VOCABULARY, WEIGHTS, encoder_path, weights_key)

EXPORT_PACKAGES = ("tensorflow", "tf2onnx", "onnx")


def can_export() -> bool:
    """Whether the packages that export are installed."""
    return all(importlib.util.find_spec(name) is not None for name in EXPORT_PACKAGES)


def export_encoder(weights: str, input_size: int) -> Path:
    """Export Xception with these weights (a weights file, or "imagenet") at this input size into the cache;
    returns the file written."""
    from .features import build_encoder, encoder_identity

    encoder = build_encoder(weights, input_size)
    key = weights_key(weights)
    path = encoder_path(key, input_size)
    export_model(encoder, path, {KIND: ENCODER, WEIGHTS: key, INPUT_SIZE: str(input_size),
                                 FEATURES: json.dumps(encoder_identity(encoder))})
    return path


def export_decoders(models: Sequence, folder: str | os.PathLike) -> list[str]:
    """Export the decoders of a model or an ensemble (Keras models) into `folder` as DECODER_FILES: the photo
    branches and the step model that caption.Captioner runs. Returns the files' names."""
    from .caption import photo_model, step_model
    from .model import vocab_size_of

    vocabulary = {VOCABULARY: str(vocab_size_of(models[0]))}
    export_model(photo_model(models), Path(folder) / DECODER_FILES[DECODER_START], {KIND: DECODER_START, **vocabulary})
    export_model(step_model(models), Path(folder) / DECODER_FILES[DECODER_STEP], {KIND: DECODER_STEP, **vocabulary})
    return list(DECODER_FILES.values())


def export_model(model, path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Keras's ONNX export of a model into `path`, atomically, with `metadata` added."""
    import numpy as np
    import onnx

    dummy = [np.zeros((1, *spec.shape[1:]), spec.dtype) for spec in model.inputs]
    model(dummy if len(dummy) > 1 else dummy[0])  # Keras exports only a model that has been called
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its notes on every node converted
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's deprecation warnings
        model.export(str(tmp), format="onnx", verbose=False)
        exported = onnx.load(str(tmp))
        for key, value in metadata.items():
            exported.metadata_props.add(key=key, value=value)
        onnx.save(exported, str(tmp))
