"""Bounded-time fuzzing (hypothesis) of the image loader, the caption-file parser and the pickle loader."""
import io
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from caption_generator import data
from caption_generator.errors import CaptionError
from caption_generator.features import load_image
from caption_generator.files import load_pickle, save_pickle
from caption_generator.layouts import read_captions

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _encoded(mode: str, fmt: str, size=(12, 9), **options) -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


SEEDS = [_encoded("RGB", "JPEG"), _encoded("CMYK", "JPEG"), _encoded("RGB", "JPEG", progressive=True),
         _encoded("RGBA", "PNG"), _encoded("P", "PNG"), _encoded("L", "GIF"), _encoded("RGB", "BMP"),
         _encoded("RGB", "TIFF"), _encoded("RGB", "WEBP"), _encoded("RGB", "PNG", exif=b"Exif\0\0II*\0")]


@st.composite
def mutated_images(draw) -> bytes:
    """A small valid image of some format with a few bytes changed, inserted or cut off."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw[at:at] = draw(st.binary(max_size=16))
    return bytes(raw[:draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(raw=st.one_of(mutated_images(), st.binary(max_size=64)))
def test_image_loader_returns_an_input_or_a_clear_error(scratch, raw):
    path = scratch / "photo.jpg"
    path.write_bytes(raw)
    try:
        x = load_image(path, 71)
    except CaptionError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    assert x.shape == (71, 71, 3) and x.dtype == np.float32
    assert np.isfinite(x).all() and -1.0 <= x.min() and x.max() <= 1.0


_LINE_PARTS = st.sampled_from(["a.jpg", "b.jpg#0", "#3", "\t", " ", "A dog runs .", "é", "\ufffd", "x#y",
                               "\x0c", "\u2028", "\x85", "\x1c", ""])
_LINE_ENDS = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def caption_files(draw) -> bytes:
    """Lines built from caption-file pieces and junk, any line endings, sometimes bytes that are not UTF-8."""
    lines = draw(st.lists(st.one_of(st.lists(_LINE_PARTS, max_size=6).map("".join), st.text(max_size=20)),
                          max_size=12))
    raw = b"".join(line.encode() + draw(_LINE_ENDS) for line in lines)
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=8))
    return raw


@FUZZ
@given(raw=caption_files())
def test_caption_parser_keeps_only_well_formed_lines(scratch, raw):
    path = scratch / "captions.txt"
    path.write_bytes(raw)
    try:
        captions = read_captions(path)
    except CaptionError as e:
        assert "no captions" in str(e)
        return
    assert captions
    for image, texts in captions.items():
        assert image and image == image.strip() and "#" not in image and "\t" not in image
        assert texts and all(t and t == t.strip() and "\n" not in t and "\r" not in t for t in texts)


_WORDS = st.text(string.ascii_lowercase + "éß", min_size=1, max_size=8)
_NAMES = st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=12)


@FUZZ
@given(descriptions=st.dictionaries(_NAMES, st.lists(st.lists(_WORDS, min_size=1, max_size=6).map(" ".join),
                                                     min_size=1, max_size=4), min_size=1, max_size=5),
       crlf=st.booleans())
def test_descriptions_round_trip(scratch, descriptions, crlf):
    path = scratch / "descriptions.txt"
    data.save_descriptions(descriptions, path)
    if crlf:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert data.load_descriptions(path) == descriptions
    assert data.clean_descriptions(descriptions) == descriptions


@FUZZ
@given(text=st.text(max_size=40))
def test_cleaning_is_idempotent_and_leaves_only_lowercase_words(text):
    cleaned = data.clean_caption(text)
    assert data.clean_caption(cleaned) == cleaned
    assert all(w.isalpha() and w == w.lower() for w in cleaned.split(" ") if cleaned)


@FUZZ
@given(obj=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
                        | st.binary(max_size=8),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3),
                        max_leaves=10),
       cut=st.integers(0, 64))
def test_pickle_loader_round_trips_plain_data_and_rejects_damage_clearly(scratch, obj, cut):
    path = scratch / "plain.p"
    save_pickle(obj, path)
    assert load_pickle(path) == obj
    raw = path.read_bytes()
    path.write_bytes(raw[:max(len(raw) - 1 - cut, 0)])
    with pytest.raises(CaptionError):
        load_pickle(path)


@FUZZ
@given(raw=st.binary(max_size=64))
def test_pickle_loader_on_random_bytes_gives_data_or_a_clear_error(scratch, raw):
    path = scratch / "random.p"
    path.write_bytes(raw)
    try:
        load_pickle(path)
    except CaptionError:
        pass
