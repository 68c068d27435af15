import pickle

import numpy as np
import pytest

from caption_generator.errors import CaptionError
from caption_generator.files import load_pickle, save_pickle
from caption_generator.vocabulary import END, PAD, START, UNK, Vocabulary


def test_reserved_tokens_never_collide_with_the_words_start_and_end():
    vocab = Vocabulary.build(["the race comes to an end", "a start line"])
    assert vocab.words[:4] == [PAD, START, END, UNK]
    ids = vocab.encode("the end")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert ids[2] not in (vocab.end_id, vocab.start_id) and vocab.words[ids[2]] == "end"
    assert vocab.decode(ids) == "the end"


def test_min_count_maps_rare_words_to_unknown_and_max_length_counts_start_and_end():
    vocab = Vocabulary.build(["a dog runs", "a dog sits", "a cat"], min_count=2)
    assert set(vocab.words[4:]) == {"a", "dog"}
    assert vocab.decode(vocab.encode("a cat")) == "a"
    assert vocab.encode("a cat")[2] == vocab.index[UNK]
    assert vocab.max_length == 5


def test_save_load_roundtrip(tmp_path):
    vocab = Vocabulary.build(["a dog runs"])
    vocab.save(tmp_path / "tokenizer.p")
    assert Vocabulary.load(tmp_path / "tokenizer.p") == vocab


def test_restricted_unpickler_accepts_plain_data_and_arrays(tmp_path):
    value = {"a": [1, 2.5, "x", (True, None)], "b": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_pickle(value, tmp_path / "v.p")
    loaded = load_pickle(tmp_path / "v.p")
    assert loaded["a"] == value["a"] and np.array_equal(loaded["b"], value["b"])


class _RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_a_pickle_that_would_run_code(tmp_path):
    path = tmp_path / "tokenizer.p"
    path.write_bytes(pickle.dumps({"words": _RunsCode()}))
    with pytest.raises(CaptionError, match="not a plain-data pickle"):
        Vocabulary.load(path)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "tokenizer.p"
    Vocabulary.build(["a dog"]).save(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CaptionError, match="truncated"):
        Vocabulary.load(path)
