"""Atomic writes and the restricted pickle loader."""
import numpy as np
import pytest

from caption_generator.errors import CaptionError
from caption_generator.features import load_features
from caption_generator.files import load_pickle, save_pickle, write_text
from caption_generator.vocabulary import Vocabulary
from conftest import code_running_pickle


def test_crafted_pickles_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "features.p"
    crafted.write_bytes(code_running_pickle(f"touch {marker}"))
    with pytest.raises(CaptionError, match="not a plain-data pickle.*refusing to load (posix|os).system"):
        load_features(crafted)
    with pytest.raises(CaptionError, match="not a plain-data pickle"):
        Vocabulary.load(crafted)
    crafted.write_bytes(b"\x80\x04cbuiltins\nbytes\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85R.")  # bytes(2**40)
    with pytest.raises(CaptionError, match="refusing to load builtins.bytes"):
        load_pickle(crafted)
    assert not marker.exists()


def test_plain_pickles_load_and_damaged_ones_fail_clearly(tmp_path, random_features):
    path = tmp_path / "features.p"
    save_pickle(random_features, path)
    loaded = load_features(path)
    assert all(np.array_equal(loaded[k], v) for k, v in random_features.items())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CaptionError, match="unreadable or truncated pickle"):
        load_features(path)
    save_pickle(["not", "features"], path)
    with pytest.raises(CaptionError, match="not a features file"):
        load_features(path)


def test_failed_writes_keep_the_old_file(tmp_path):
    path = tmp_path / "tokenizer.p"
    save_pickle({"old": 1}, path)
    with pytest.raises(Exception):
        save_pickle({"big": bytes(1 << 20), "unpicklable": lambda: None}, path)
    assert load_pickle(path) == {"old": 1} and [p.name for p in tmp_path.iterdir()] == ["tokenizer.p"]
    write_text(tmp_path / "a.txt", "old")
    with pytest.raises(UnicodeEncodeError):
        write_text(tmp_path / "a.txt", "new \ud800")
    assert (tmp_path / "a.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 2
