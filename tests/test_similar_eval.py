"""scripts/similar_eval.py: which similar-photos ranking finds photos sharing the query's main nouns."""
import json

from caption_generator.layouts import open_layout
from caption_generator.similar import CaptionIndex
from conftest import FLICKR
from scripts.similar_eval import main, main_nouns, rank_eval


def test_main_nouns_and_rank_eval(descriptions, random_features):
    index = CaptionIndex.build(descriptions, random_features, open_layout(FLICKR))
    assert main_nouns(["a black dog running on grass", "a dog on the grass", "the dog is running"]) == {"dog", "grass"}
    assert len(main_nouns(["the kids", "a girl", "a boy"])) == 1
    queries = {n: (descriptions[n][0], random_features[n]) for n in list(descriptions)[:6] if n in index.position}
    scores = rank_eval(index, queries, descriptions, k=3)
    assert set(scores) == {"text", "image", "both", "random"} and all(0 <= v <= 1 for v in scores.values())


def test_the_script_on_the_fixture(tiny_model, tmp_path, capsys):
    report = main(["--data-root", str(FLICKR), "--features", str(tiny_model / "features.p"), "--k", "3",
                   "--model", str(tiny_model / "model.keras"), "--tokenizer", str(tiny_model / "tokenizer.p"),
                   "--out", str(tmp_path / "report.json")])
    assert report["queries"] == 4 and report["collection"] == 22
    assert set(report["share_of_matches_sharing_a_main_noun"]) == {"text", "image", "both", "random"}
    assert json.loads((tmp_path / "report.json").read_text())["captions"].keys() == report["captions"].keys()
    assert "| text |" in capsys.readouterr().out
