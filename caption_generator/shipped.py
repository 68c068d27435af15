"""The shipped model in models/shipped/: its files checked against the manifest's sha256 sums (those a run
uses), `ship`, which puts trained models there with their ONNX decoders, `ship_decoders`, which exports those
again, and `ship_calibration`, their confidence thresholds. Nothing else writes to that folder. Importing it
does not import TensorFlow: the shipped model also runs on ONNX Runtime."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from .confidence import CALIBRATION_FILE, Calibration
from .errors import CaptionError
from .files import atomic_path, sha256_file, write_text
from .vocabulary import TOKENIZER_FILE, Vocabulary

MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "shipped"  # training never writes here
MANIFEST = MODELS_DIR / "manifest.json"


def shipped_manifest() -> dict:
    """The shipped model's manifest: its files, their sha256 sums, its input size, its decoders."""
    if not MANIFEST.is_file():
        raise CaptionError(f"no shipped model in {MODELS_DIR}; pass --model and --tokenizer")
    return json.loads(MANIFEST.read_text())


def _checked(folder: Path, manifest: dict, name: str) -> Path:
    """The file `name` of a manifest's folder, after checking its sha256 against the manifest."""
    path = folder / name
    if not path.is_file():
        raise CaptionError(f"{path}: shipped file missing (is this a full clone? try git lfs/checkout)")
    if sha256_file(path) != manifest["sha256"].get(name):
        raise CaptionError(f"{path}: sha256 differs from {MANIFEST.name}; the file is damaged or replaced")
    return path


def shipped_file(manifest: dict, name: str) -> Path:
    """A shipped file, after checking its sha256 against the manifest."""
    return _checked(MODELS_DIR, manifest, name)


def shipped_calibration(manifest: dict) -> Calibration | None:
    """The shipped model's confidence calibration (its sum checked), if it has one."""
    name = manifest.get("confidence")
    return Calibration.load(shipped_file(manifest, name)) if name else None


def ship_calibration(path: str | os.PathLike, models_dir: Path = MODELS_DIR) -> dict:
    """Put a confidence calibration (scripts/calibrate_confidence.py) of the shipped model beside it, its
    sha256 in the manifest. Shipping new models leaves it out of their manifest: calibrate them again."""
    Calibration.load(path)  # refuses a file that is not one
    manifest = json.loads((models_dir / "manifest.json").read_text())
    with atomic_path(models_dir / CALIBRATION_FILE) as tmp:
        shutil.copyfile(path, tmp)
    manifest["confidence"] = CALIBRATION_FILE
    manifest["sha256"][CALIBRATION_FILE] = sha256_file(models_dir / CALIBRATION_FILE)
    write_text(models_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def ship(model_paths: Sequence[str | os.PathLike], tokenizer_path: str | os.PathLike, input_size: int,
         notes: dict | None = None, models_dir: Path = MODELS_DIR) -> dict:
    """Copy trained model(s) (weights and architecture only, no optimizer state) and their vocabulary
    into `models_dir` with a manifest of sha256 sums, which the default captioning path checks, then
    export their ONNX decoders beside them (ship_decoders)."""
    from .caption import Captioner
    from .model import load_model

    vocab = Vocabulary.load(tokenizer_path)
    models = [load_model(p) for p in model_paths]
    Captioner(models, vocab)  # refuses a model and vocabulary that don't belong together
    names = ["caption_model.keras"] if len(models) == 1 else [f"caption_model_{i + 1}.keras" for i in range(len(models))]
    for model, name in zip(models, names):
        with atomic_path(models_dir / name) as tmp:
            model.save(tmp)  # loaded with compile=False: no optimizer state is saved
    vocab.save(models_dir / TOKENIZER_FILE)
    files = [*names, TOKENIZER_FILE]
    manifest = {"models": names, "tokenizer": TOKENIZER_FILE, "input_size": input_size,
                "sha256": {f: sha256_file(models_dir / f) for f in files}, **(notes or {})}
    write_text(models_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return ship_decoders(models_dir)


def ship_decoders(models_dir: Path = MODELS_DIR) -> dict:
    """Export the ONNX decoders of the models in `models_dir` (their sums checked) beside them, as the
    manifest's "decoders", under its sha256 sums. Returns the manifest."""
    from .export import export_decoders
    from .model import load_model

    manifest = json.loads((models_dir / "manifest.json").read_text())
    models = [load_model(_checked(models_dir, manifest, name)) for name in manifest["models"]]
    names = export_decoders(models, models_dir)
    manifest["decoders"] = names
    manifest["sha256"] |= {name: sha256_file(models_dir / name) for name in names}
    write_text(models_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest
