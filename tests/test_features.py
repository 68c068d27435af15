import os
from pathlib import Path

import numpy as np
import pytest

from caption_generator import data
from caption_generator.features import encode, encoder_weights, extract_features, load_features, load_image
from caption_generator.files import CaptionError
from conftest import DATA, FLICKR, TINY_INPUT


def test_load_image_gives_xception_input():
    path = next(data.image_dir(FLICKR).iterdir())
    x = load_image(path, 299)
    assert x.shape == (299, 299, 3) and x.dtype == np.float32
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0


def test_extract_features_writes_one_vector_per_photo(tmp_path, tiny_encoder):
    paths = data.list_images(data.image_dir(FLICKR))
    out = tmp_path / "features.p"
    features = extract_features(paths[:5], tiny_encoder, out=out, batch_size=2, progress=False)
    assert sorted(features) == sorted(p.name for p in paths[:5])
    assert all(v.shape == (2048,) and v.dtype == np.float32 for v in features.values())
    loaded = load_features(out)
    assert all(np.array_equal(loaded[k], features[k]) for k in features)
    assert not Path(str(out) + ".partial").exists()


def test_batched_features_equal_one_photo_at_a_time(tiny_encoder):
    paths = data.list_images(data.image_dir(FLICKR))[:3]
    batched = [v for _, v, _ in encode(paths, tiny_encoder, batch_size=3, progress=False)]
    single = tiny_encoder.predict(np.stack([load_image(p, TINY_INPUT) for p in paths])[:1], verbose=0)[0]
    np.testing.assert_allclose(batched[0], single, rtol=1e-4, atol=1e-4)


def test_encoder_weights_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("XCEPTION_WEIGHTS", raising=False)
    assert encoder_weights(None) == "imagenet"
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"x")
    monkeypatch.setenv("XCEPTION_WEIGHTS", str(weights))
    assert encoder_weights(None) == str(weights)
    with pytest.raises(CaptionError, match="not found"):
        encoder_weights(tmp_path / "nope.h5")


@pytest.mark.skipif(not os.environ.get("XCEPTION_WEIGHTS"), reason="needs the ImageNet weights ($XCEPTION_WEIGHTS)")
def test_imagenet_features_tell_scenes_apart():
    """The original photo and its 224x224 copy are the same scene; other photos are not."""
    from caption_generator.features import build_encoder
    encoder = build_encoder(encoder_weights(), 299)
    original = next((DATA / "originals").iterdir())
    others = [p for p in data.list_images(data.image_dir(FLICKR)) if p.name != original.name][:4]
    copy = data.image_dir(FLICKR) / original.name
    vectors = [v for _, v, _ in encode([original, copy, *others], encoder, progress=False)]
    unit = [v / np.linalg.norm(v) for v in vectors]
    same = float(unit[0] @ unit[1])
    different = max(float(unit[0] @ u) for u in unit[2:])
    assert same > 0.85 and same > different + 0.2, (same, different)


def test_the_progress_bar_ends_at_100_percent(tiny_encoder, capsys):
    paths = data.list_images(data.image_dir(FLICKR))[:5]
    extract_features(paths, tiny_encoder, batch_size=2)
    assert "5/5" in capsys.readouterr().err.split("\r")[-1]  # the bar's last state: every photo counted
