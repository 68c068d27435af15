"""The shipped model: its files checked against the manifest's sha256 sums, and ship writing a manifest."""
import json

import pytest

from caption_generator import load_captioner, shipped
from caption_generator.errors import CaptionError
from caption_generator.files import sha256_file
from caption_generator.onnx_runtime import OnnxCaptioner


def test_the_shipped_files_match_their_manifest():
    manifest = shipped.shipped_manifest()
    models = [shipped.shipped_file(manifest, name) for name in manifest["models"]]
    tokenizer = shipped.shipped_file(manifest, manifest["tokenizer"])
    assert [p.name for p in models] == manifest["models"] and tokenizer.name == manifest["tokenizer"]
    assert all(sha256_file(shipped.MODELS_DIR / name) == digest for name, digest in manifest["sha256"].items())


def test_ship_writes_models_vocabulary_decoders_and_sums_that_are_then_checked(tiny_model, tmp_path, monkeypatch):
    manifest = shipped.ship([tiny_model / "model.keras"], tiny_model / "tokenizer.p", 71, models_dir=tmp_path)
    assert manifest["models"] == ["caption_model.keras"] and manifest["input_size"] == 71
    assert manifest["decoders"] == ["decoder_start.onnx", "decoder_step.onnx"]
    assert set(manifest["sha256"]) == {"caption_model.keras", "tokenizer.p", *manifest["decoders"]}
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(shipped, "MANIFEST", tmp_path / "manifest.json")
    written = shipped.shipped_manifest()
    assert [shipped.shipped_file(written, name) for name in written["models"]] == [tmp_path / "caption_model.keras"]
    assert isinstance(load_captioner(runtime="onnx")[0], OnnxCaptioner)
    tampered = bytearray((tmp_path / "decoder_step.onnx").read_bytes())
    tampered[-5000] ^= 1  # a weight changed: the file still loads, so only its sum tells
    (tmp_path / "decoder_step.onnx").write_bytes(bytes(tampered))
    with pytest.raises(CaptionError, match="decoder_step.onnx: sha256 differs"):
        load_captioner(runtime="onnx")
    (tmp_path / "tokenizer.p").write_bytes(b"replaced")
    with pytest.raises(CaptionError, match="tokenizer.p: sha256 differs"):
        load_captioner(runtime="keras")


def test_the_confidence_calibration_ships_under_the_sums(tiny_model, tmp_path, monkeypatch):
    from caption_generator.confidence import CALIBRATION_FILE, Calibration

    assert shipped.shipped_calibration(shipped.shipped_manifest()) is not None  # the shipped model has one
    shipped.ship([tiny_model / "model.keras"], tiny_model / "tokenizer.p", 71, models_dir=tmp_path)
    (tmp_path / "calibration.npz").write_bytes(b"not one")
    with pytest.raises(CaptionError, match="not a confidence calibration"):
        shipped.ship_calibration(tmp_path / "calibration.npz", models_dir=tmp_path)
    Calibration.load(shipped.MODELS_DIR / CALIBRATION_FILE).save(tmp_path / "calibration.npz")
    manifest = shipped.ship_calibration(tmp_path / "calibration.npz", models_dir=tmp_path)
    assert manifest["confidence"] == CALIBRATION_FILE and CALIBRATION_FILE in manifest["sha256"]
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(shipped, "MANIFEST", tmp_path / "manifest.json")
    assert shipped.shipped_calibration(shipped.shipped_manifest()).familiarity_threshold > 0
    damaged = bytearray((tmp_path / CALIBRATION_FILE).read_bytes())
    damaged[-100] ^= 1
    (tmp_path / CALIBRATION_FILE).write_bytes(bytes(damaged))
    with pytest.raises(CaptionError, match=f"{CALIBRATION_FILE}: sha256 differs"):
        shipped.shipped_calibration(shipped.shipped_manifest())
    assert "confidence" not in shipped.ship([tiny_model / "model.keras"], tiny_model / "tokenizer.p", 71,
                                            models_dir=tmp_path)  # new models need a new calibration
