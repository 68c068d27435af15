import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from caption_generator import data
from caption_generator.files import CaptionError, load_pickle, save_pickle
from caption_generator.show import save_figure
from caption_generator.similar import (CaptionIndex, main_nouns, open_index, rank_eval,
                                       similar_figure)
from conftest import FLICKR, ROOT, TINY_INPUT


@pytest.fixture(scope="module")
def index(descriptions, random_features):
    return CaptionIndex.build(descriptions, random_features, data.image_dir(FLICKR))


def test_text_ranking_finds_the_photo_of_a_reference_caption_unless_it_is_excluded(index, descriptions):
    name = "1022454332_6af2c1449a.jpg"
    caption = descriptions[name][2]
    found = index.query(caption, n=4, threshold=0.0)
    assert found.matches[0].name == name and found.matches[0].caption == caption
    assert found.matches[0].score == pytest.approx(1.0, abs=1e-5)
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4
    assert found.matches[0].path == data.image_dir(FLICKR).resolve() / name
    others = index.query(caption, n=30, threshold=0.0, exclude=name)
    assert name not in [m.name for m in others.matches] and len(others.matches) == len(index) - 1


def test_threshold_keeps_only_matches_above_it_and_falls_back_to_the_closest_below(index, descriptions):
    name = "1022454332_6af2c1449a.jpg"
    above = index.query(descriptions[name][0], n=6, threshold=0.99)
    assert not above.below_threshold and [m.name for m in above.matches] == [name]
    below = index.query("a zebra with a dog", n=3, threshold=0.9, exclude=name)
    assert below.below_threshold and len(below.matches) == 3
    assert all(m.score < 0.9 for m in below.matches)
    assert "nothing above the threshold 0.90" in below.describe()
    assert below.to_json()["below_threshold"] is True
    assert index.query("the is of", n=3).matches  # only stop words: every score is 0, still the closest


def test_image_ranking_and_the_combined_ranking(index, descriptions, random_features):
    name = "2513260012_03d33305cf.jpg"
    by_image = index.query("anything", 2 * random_features[name], n=3, by="image", threshold=0.0)
    assert by_image.matches[0].name == name and by_image.matches[0].score == pytest.approx(1.0, abs=1e-5)
    caption = descriptions[name][0]
    text, _ = index.scores(caption, by="text")
    image, _ = index.scores(caption, random_features[name], by="image")
    both, _ = index.scores(caption, random_features[name], by="both")
    np.testing.assert_allclose(both, (text + image) / 2, atol=1e-6)
    assert index.query(caption, random_features[name], n=1, by="both", threshold=0.0).matches[0].name == name
    assert name not in [m.name for m in index.query(caption, random_features[name], 5, "both", exclude=name).matches]


def test_index_without_features_cannot_rank_by_image(descriptions):
    text_only = CaptionIndex.build(descriptions)
    assert text_only.default_by() == "text"
    with pytest.raises(CaptionError, match="no photo features"):
        text_only.query("a dog", np.ones(2048), by="image")


def test_saved_index_is_plain_data_and_answers_the_same(index, tmp_path, descriptions, random_features):
    index.save(tmp_path / "caption_index.p")
    saved = load_pickle(tmp_path / "caption_index.p")  # the restricted unpickler accepts it
    assert isinstance(saved["vocabulary"], list) and isinstance(saved["data"], np.ndarray)
    loaded = CaptionIndex.load(tmp_path / "caption_index.p")
    name = next(iter(descriptions))
    for by in ("text", "image", "both"):
        np.testing.assert_allclose(loaded.scores("two dogs play in the snow", random_features[name], by)[0],
                                   index.scores("two dogs play in the snow", random_features[name], by)[0])
    save_pickle({"version": 0}, tmp_path / "old.p")
    with pytest.raises(CaptionError, match="not a caption index"):
        CaptionIndex.load(tmp_path / "old.p")


def test_open_index_builds_once_and_rebuilds_when_the_captions_change(flickr_copy, tmp_path):
    path = tmp_path / "caption_index.p"
    with pytest.raises(CaptionError, match="give --data-root"):
        open_index(path)
    first = open_index(path, flickr_copy)
    assert len(first) == len(data.list_images(data.image_dir(flickr_copy)))  # photos missing on disk are left out
    stamp = path.stat().st_mtime_ns
    assert len(open_index(path, flickr_copy).captions) == len(first.captions)
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    captions = data.captions_path(flickr_copy)
    captions.write_text(captions.read_text() + "1022454332_6af2c1449a.jpg#5\tA red kite over a beach .\n")
    assert len(open_index(path, flickr_copy).captions) == len(first.captions) + 1
    assert len(open_index(path).captions) == len(first.captions) + 1


def test_a_query_over_40000_captions_takes_milliseconds(descriptions):
    rng = np.random.default_rng(0)
    words = sorted({w for texts in descriptions.values() for c in texts for w in c.split()})
    big = {f"{i}.jpg": [" ".join(rng.choice(words, 11)) for _ in range(5)] for i in range(8000)}
    index = CaptionIndex.build(big)
    index.query("a dog runs on the grass")
    start = time.perf_counter()
    for _ in range(20):
        index.query("a dog runs on the grass", n=6)
    assert (time.perf_counter() - start) / 20 < 0.05


def test_main_nouns_and_rank_eval(index, descriptions, random_features):
    assert main_nouns(["a black dog running on grass", "a dog on the grass", "the dog is running"]) == {"dog", "grass"}
    assert main_nouns(["the kids", "a girl", "a boy"]) == {"boy"} or len(main_nouns(["the kids", "a girl", "a boy"])) == 1
    queries = {n: (descriptions[n][0], random_features[n]) for n in list(descriptions)[:6] if n in index.position}
    scores = rank_eval(index, queries, descriptions, k=3)
    assert set(scores) == {"text", "image", "both", "random"} and all(0 <= v <= 1 for v in scores.values())


def test_figure_shows_each_query_with_its_matches(index, descriptions, tmp_path):
    folder = data.image_dir(FLICKR)
    queries = [(folder / n, descriptions[n][0], index.query(descriptions[n][0], n=4, threshold=t, exclude=n))
               for n, t in (("1022454332_6af2c1449a.jpg", 0.3), ("2513260012_03d33305cf.jpg", 0.99))]
    assert queries[1][2].below_threshold
    fig = similar_figure(queries)
    assert len(fig.axes) == 2 * 5
    assert "closest below" in fig.axes[5].get_title()
    save_figure(fig, tmp_path / "similar.png")
    with Image.open(tmp_path / "similar.png") as img:
        assert img.format == "PNG" and img.width >= 1000 and img.height >= 500


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, descriptions, tiny_encoder):
    """A tiny untrained caption model, its vocabulary and the fixture's features, as files."""
    import keras
    from caption_generator.features import extract_features
    from caption_generator.model import build_model
    from caption_generator.vocabulary import Vocabulary

    folder = tmp_path_factory.mktemp("cli")
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    keras.utils.set_random_seed(0)
    build_model(len(vocab), units=8, embedding_dim=8).save(folder / "model.keras")
    vocab.save(folder / "tokenizer.p")
    extract_features(data.list_images(data.image_dir(FLICKR)), tiny_encoder, folder / "features.p", progress=False)
    return folder


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cli_similar_photos_as_json_with_a_figure(cli_files):
    index, figure = cli_files / "caption_index.p", cli_files / "similar.png"
    built = _run("-m", "caption_generator", "index", "--data-root", str(FLICKR),
                 "--features", str(cli_files / "features.p"), "--index", str(index))
    assert built.returncode == 0, built.stderr
    assert "110 captions of 22 photos (captions and photo features)" in built.stdout
    query = data.image_dir(FLICKR) / "1022454332_6af2c1449a.jpg"
    model = ["--model", str(cli_files / "model.keras"), "--tokenizer", str(cli_files / "tokenizer.p"),
             "--encoder-weights", "none", "--input-size", str(TINY_INPUT)]
    done = _run("testing_caption_generator.py", "-i", str(query), "--similar", "4", "--by", "both",
                "--index", str(index), "--json", "--save", str(figure), *model)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    similar = result["similar"]
    assert result["image"] == str(query) and similar["by"] == "both" and similar["threshold"] == 0.9
    assert similar["below_threshold"] is True  # an untrained model's caption matches nothing at 0.9
    assert len(similar["matches"]) == 4 and query.name not in [m["image"].split("/")[-1] for m in similar["matches"]]
    scores = [m["score"] for m in similar["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert all(os.path.isfile(m["image"]) for m in similar["matches"])
    with Image.open(figure) as img:
        assert img.format == "PNG"

    text = _run("testing_caption_generator.py", "-i", str(query), "--similar", "2", "--threshold", "0",
                "--data-root", str(FLICKR), "--index", str(cli_files / "text_index.p"), *model)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].startswith("  similar photos (text ranking, score >= 0.00)") and len(lines) == 4


def test_rank_eval_script_on_the_fixture(cli_files, tmp_path, capsys):
    from bench.similar_eval import main
    report = main(["--data-root", str(FLICKR), "--features", str(cli_files / "features.p"), "--k", "3",
                   "--model", str(cli_files / "model.keras"), "--tokenizer", str(cli_files / "tokenizer.p"),
                   "--out", str(tmp_path / "report.json")])
    assert report["queries"] == 4 and report["collection"] == 22
    assert set(report["share_of_matches_sharing_a_main_noun"]) == {"text", "image", "both", "random"}
    assert json.loads((tmp_path / "report.json").read_text())["captions"].keys() == report["captions"].keys()
    assert "| text |" in capsys.readouterr().out


def test_cli_save_needs_similar(tmp_path):
    from caption_generator.__main__ import main
    assert main(["caption", "-i", str(FLICKR), "--save", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
