"""Photos of any kind loaded the same way for training and captioning, and their Xception features."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_generator.errors import CaptionError
from caption_generator.features import encode, encoder_weights, extract_features, load_features, load_image
from caption_generator.layouts import list_images, open_layout
from conftest import (DATA, FLICKR, PHOTOS, ROOT, TINY_INPUT, bad_photos, jpeg_claiming, odd_but_real_photos,
                      zero_png)


def test_load_image_gives_xception_input():
    path = PHOTOS[0]
    x = load_image(path, 299)
    assert x.shape == (299, 299, 3) and x.dtype == np.float32
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0


def test_extract_features_writes_one_vector_per_photo(tmp_path, tiny_encoder):
    paths = PHOTOS
    out = tmp_path / "features.p"
    features = extract_features(paths[:5], tiny_encoder, out=out, batch_size=2, progress=False)
    assert sorted(features) == sorted(p.name for p in paths[:5])
    assert all(v.shape == (2048,) and v.dtype == np.float32 for v in features.values())
    loaded = load_features(out)
    assert all(np.array_equal(loaded[k], features[k]) for k in features)
    assert not Path(str(out) + ".partial").exists()


def test_batched_features_equal_one_photo_at_a_time(tiny_encoder):
    paths = PHOTOS[:3]
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
    others = [p for p in PHOTOS if p.name != original.name][:4]
    copy = open_layout(FLICKR).photo_path(original.name)
    vectors = [v for _, v, _ in encode([original, copy, *others], encoder, progress=False)]
    unit = [v / np.linalg.norm(v) for v in vectors]
    same = float(unit[0] @ unit[1])
    different = max(float(unit[0] @ u) for u in unit[2:])
    assert same > 0.85 and same > different + 0.2, (same, different)


def test_the_progress_bar_ends_at_100_percent(tiny_encoder, capsys):
    paths = PHOTOS[:5]
    extract_features(paths, tiny_encoder, batch_size=2)
    assert "5/5" in capsys.readouterr().err.split("\r")[-1]  # the bar's last state: every photo counted


def test_photos_of_any_mode_and_size_load_as_rgb(tmp_path):
    for name, rgb in odd_but_real_photos(tmp_path).items():
        x = load_image(tmp_path / name, TINY_INPUT)
        assert x.shape == (TINY_INPUT, TINY_INPUT, 3) and x.dtype == np.float32
        np.testing.assert_allclose((x + 1.0) * 127.5, np.broadcast_to(rgb, x.shape), atol=3, err_msg=name)


def test_unreadable_photos_fail_with_one_clear_line(tmp_path):
    for name, reason in bad_photos(tmp_path).items():
        with pytest.raises(CaptionError, match=reason) as raised:
            load_image(tmp_path / name)
        assert str(raised.value).startswith(str(tmp_path / name)) and "\n" not in str(raised.value)
    with pytest.raises(CaptionError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(CaptionError, match="not a file"):
        load_image(tmp_path)


MEASURE = """
import json, sys
from caption_generator.features import load_image
from caption_generator.errors import CaptionError
found = {}
for path in sys.argv[1:]:
    try:
        found[path] = list(load_image(path, 299).shape)
    except CaptionError as e:
        found[path] = str(e)
# VmHWM: this process's own peak (ru_maxrss would include the parent's memory from before exec)
found["peak_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
print(json.dumps(found))
"""


def test_huge_photos_and_bombs_keep_memory_bounded(tmp_path):
    """Decompression bombs fail before decoding; a big real JPEG is decoded at reduced scale."""
    big = tmp_path / "big.jpg"
    Image.new("L", (9000, 9000), 128).save(big, quality=5)  # 81 Mpixels, 0.5 MB
    files = [big, zero_png(tmp_path / "bomb.png", 20000, 20000), zero_png(tmp_path / "bomb2.png", 12000, 12000),
             jpeg_claiming(tmp_path / "huge.jpg", 20000, 20000)]
    result = subprocess.run([sys.executable, "-c", MEASURE, *map(str, files)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    found = json.loads(result.stdout)
    assert found.pop(str(big)) == [299, 299, 3]
    assert all("too large to decode safely" in found.pop(str(f)) for f in files[1:])
    assert found["peak_mb"] < 200, found  # decoding big.jpg in full alone would take 81 MB + 243 MB as RGB


def test_extract_features_skips_bad_photos_and_does_the_rest(tmp_path, tiny_encoder, caplog):
    odd = odd_but_real_photos(tmp_path / "photos")
    bad = bad_photos(tmp_path / "photos")
    for photo in PHOTOS[:2]:
        shutil.copy(photo, tmp_path / "photos")
    features = extract_features(list_images(tmp_path / "photos"), tiny_encoder, out=tmp_path / "features.p",
                                batch_size=4, chunk_size=3, progress=False)
    assert sorted(features) == sorted([*odd, *(p.name for p in PHOTOS[:2])])
    assert all(np.isfinite(v).all() for v in features.values())
    assert sorted(load_features(tmp_path / "features.p")) == sorted(features)
    for name in bad:
        assert f"skipped: {tmp_path / 'photos' / name}" in caplog.text
    assert f"skipped {len(bad)} unreadable photos of {len(features) + len(bad)}" in caplog.text
    for name in list(odd) + [p.name for p in PHOTOS[:2]]:
        (tmp_path / "photos" / name).unlink()
    with pytest.raises(CaptionError, match="none of the 5 photos could be read"):
        extract_features(list_images(tmp_path / "photos"), tiny_encoder, progress=False)
