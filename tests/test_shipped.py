"""The shipped model: its files checked against the manifest's sha256 sums, and ship writing a manifest."""
import json

import pytest

from caption_generator import shipped
from caption_generator.errors import CaptionError
from caption_generator.files import sha256_file


def test_the_shipped_files_match_their_manifest():
    models, tokenizer, manifest = shipped.shipped_files()
    assert [p.name for p in models] == manifest["models"] and tokenizer.name == manifest["tokenizer"]
    assert all(sha256_file(shipped.MODELS_DIR / name) == digest for name, digest in manifest["sha256"].items())


def test_ship_writes_models_vocabulary_and_sums_that_are_then_checked(tiny_model, tmp_path, monkeypatch):
    manifest = shipped.ship([tiny_model / "model.keras"], tiny_model / "tokenizer.p", 71, models_dir=tmp_path)
    assert manifest["models"] == ["caption_model.keras"] and manifest["input_size"] == 71
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(shipped, "MANIFEST", tmp_path / "manifest.json")
    assert shipped.shipped_files()[0] == [tmp_path / "caption_model.keras"]
    (tmp_path / "tokenizer.p").write_bytes(b"replaced")
    with pytest.raises(CaptionError, match="sha256 differs"):
        shipped.shipped_files()
