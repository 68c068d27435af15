import numpy as np
import pytest

from caption_generator.cider import CiderD


def test_known_value():
    """'a b' against itself, document frequencies from two photos ('a b' and 'c d'): the 1-, 2- and 3-grams
    of 'a b <end>' match perfectly (idf of <end> is 0, the rest log 2), there is no 4-gram: 10 * 3/4."""
    cider = CiderD([["a b"], ["c d"]])
    assert cider.score(["a b"], [["a b"]]) == pytest.approx([7.5])


def test_matches_pycocoevalcap_with_the_end_marker(descriptions):
    """pycocoevalcap's CIDEr scorer is CIDEr-D (clipping, length penalty); given the same references for its
    document frequencies and sentences ending in the end marker, it gives the same scores."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    names = list(descriptions)
    references = [descriptions[n] for n in names]
    candidates = [descriptions[names[i - 1]][0] for i in range(len(names))]  # another photo's caption
    candidates[:4] = [descriptions[names[0]][1], "a dog", "", "a a a a a a a a"]
    scorer = CiderScorer(n=4, sigma=6.0)
    for candidate, refs in zip(candidates, references):
        scorer += (candidate + " <end>", [r + " <end>" for r in refs])
    _, expected = scorer.compute_score()
    np.testing.assert_allclose(CiderD(references).score(candidates, references), expected, rtol=1e-9, atol=1e-12)


def test_identical_beats_unrelated_and_repetition_does_not_pay(descriptions):
    references = list(descriptions.values())
    cider = CiderD(references)
    refs = references[0][1:]
    same, unrelated = cider.score([references[0][1], references[5][0]], [refs, refs])
    assert same > 1.0 and same > 5 * unrelated
    words = references[0][1].split()
    repeated = " ".join(words[:3] * 4)
    once, many = cider.score([" ".join(words[:3]), repeated], [refs, refs])
    assert many < once  # clipped counts: saying it again earns nothing
    assert cider.score([], []).shape == (0,)
    assert cider.score(["zebras"], [["a dog"]]) == pytest.approx([0.0])  # only the end marker (idf 0) in common

