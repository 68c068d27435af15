"""The command line as users run it, each command in a fresh Python: results, one clear `error:` line
(exit status 2, no traceback) for bad input, files written atomically, interrupted work resumed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_generator import data, load_captioner
from caption_generator.features import load_features
from caption_generator.files import save_pickle
from caption_generator.layouts import open_layout
from caption_generator.vocabulary import Vocabulary
from conftest import FLICKR, HAS_DOT, PHOTOS, ROOT, TINY, bad_photos, code_running_pickle, odd_but_real_photos


class Cli:
    """Runs `python -m caption_generator ARGS` (or a script of the repository) in a fresh Python."""

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def command(self, *args: str, script: str | None = None) -> list[str]:
        return [sys.executable, *([str(ROOT / script)] if script else ["-m", "caption_generator"]), *args]

    def __call__(self, *args: str, cwd: Path | None = None, script: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, script=script), cwd=cwd or ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli()


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The 'error:' lines of a run that failed cleanly (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def succeeded(result: subprocess.CompletedProcess) -> str:
    """The output of a run that succeeded."""
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout


def model_args(tiny_model: Path) -> list[str]:
    return ["--model", str(tiny_model / "model.keras"), "--tokenizer", str(tiny_model / "tokenizer.p"), *TINY]


# --- caption ------------------------------------------------------------------------------------

def test_caption_script_reports_each_bad_photo_and_captions_the_rest(cli, tmp_path, tiny_model):
    folder = tmp_path / "photos"
    odd = odd_but_real_photos(folder)
    bad = bad_photos(folder)
    (folder / "folder.jpg").mkdir()  # a folder with a photo's name is not a photo
    for photo in PHOTOS[:2]:
        shutil.copy(photo, folder)
    result = cli("-i", str(folder), "-i", str(tmp_path / "missing.jpg"), *model_args(tiny_model),
                 script="testing_caption_generator.py")
    errors = error_lines(result)
    assert len(errors) == len(bad) + 1, result.stderr
    assert sum("missing.jpg: no such file or folder" in e for e in errors) == 1
    for name, reason in bad.items():
        assert sum(name in e and reason in e for e in errors) == 1, (name, errors)
    captioned = [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line]
    assert sorted(Path(p).name for p in captioned) == sorted([*odd, *(p.name for p in PHOTOS[:2])])


def test_caption_json_gives_the_confidence_of_a_model_without_a_calibration(cli, tiny_model):
    found = json.loads(succeeded(cli("caption", "-i", str(PHOTOS[0]), "--json", *model_args(tiny_model))))
    assert 0 < found["confidence"] < 1 and found["familiarity"] is None
    assert found["flagged"] is False and found["warning"] is None


@pytest.mark.skipif(not os.environ.get("XCEPTION_WEIGHTS"), reason="needs the ImageNet weights ($XCEPTION_WEIGHTS)")
def test_caption_json_and_text_flag_a_photo_of_noise(cli, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (299, 299, 3), np.uint8)).save(noise)
    lines = succeeded(cli("-i", str(PHOTOS[0]), "-i", str(noise), "--json", script="testing_caption_generator.py"))
    photo, strange = [json.loads(line) for line in lines.splitlines()]
    assert photo["flagged"] is False and photo["familiarity"] > strange["familiarity"]
    assert 0 < strange["confidence"] < 1 and strange["flagged"] is True
    assert strange["warning"].startswith("the photo is unlike the training photos")
    text = succeeded(cli("-i", str(noise), script="testing_caption_generator.py")).splitlines()
    assert len(text) == 2 and text[1] == "  warning: " + strange["warning"]


@pytest.mark.parametrize("case", ["vocabulary of another model", "truncated model", "crafted tokenizer"])
def test_model_files_that_cannot_work_stop_before_any_photo(cli, tmp_path, tiny_model, case):
    model, tokenizer = tiny_model / "model.keras", tiny_model / "tokenizer.p"
    marker = tmp_path / "pwned"
    if case == "vocabulary of another model":
        tokenizer = tmp_path / "other.p"
        Vocabulary.build(["a cat sleeps", "a bird sings"]).save(tokenizer)
    elif case == "truncated model":
        model = tmp_path / "model.keras"
        model.write_bytes((tiny_model / "model.keras").read_bytes()[:2000])
    else:
        tokenizer = tmp_path / "tokenizer.p"
        tokenizer.write_bytes(code_running_pickle(f"touch {marker}"))
    result = cli("-i", str(PHOTOS[0]), "--model", str(model), "--tokenizer", str(tokenizer), *TINY,
                 script="testing_caption_generator.py")
    errors = error_lines(result)
    assert len(errors) == 1 and not result.stdout.strip(), result.stderr
    assert {"vocabulary of another model": "do not belong together", "truncated model": "not a readable caption model",
            "crafted tokenizer": "not a plain-data pickle"}[case] in errors[0]
    assert not marker.exists()


def test_runtimes_that_cannot_be_had_stop_with_one_clear_error(cli, tiny_model):
    cannot = "the encoder cannot run on ONNX Runtime"
    cases = {("--runtime", "onnx", *model_args(tiny_model)): "ONNX decoders ship with the shipped model only",
             ("--runtime", "onnx", "--encoder-weights", "none"): f"{cannot}: random weights run on Keras only",
             ("--runtime", "onnx", "--bfloat16"): f"{cannot}: --bfloat16 runs on Keras only"}
    for args, message in cases.items():
        errors = error_lines(cli("-i", str(PHOTOS[0]), *args, script="testing_caption_generator.py"))
        assert len(errors) == 1 and message in errors[0], (args, errors)
    errors = error_lines(cli("caption", "-i", str(PHOTOS[0]), env={"CAPTION_GENERATOR_RUNTIME": "fast"}))
    assert errors == ["error: unknown runtime 'fast' (from --runtime or $CAPTION_GENERATOR_RUNTIME): "
                      "choose auto, onnx, keras"]
    assert error_lines(cli("export", "--encoder-weights", "none")) == [
        "error: random encoder weights run on Keras only: nothing to export"]


def test_similar_photos_as_json_with_a_figure(cli, tiny_model):
    index, figure = tiny_model / "caption_index.p", tiny_model / "similar.png"
    built = succeeded(cli("index", "--data-root", str(FLICKR), "--features", str(tiny_model / "features.p"),
                          "--index", str(index)))
    assert "110 captions of 22 photos (captions and photo features)" in built
    query = open_layout(FLICKR).photo_path("1022454332_6af2c1449a.jpg")
    done = cli("-i", str(query), "--similar", "4", "--by", "both", "--index", str(index), "--json",
               "--save", str(figure), *model_args(tiny_model), script="testing_caption_generator.py")
    result = json.loads(succeeded(done))
    similar = result["similar"]
    assert result["image"] == str(query) and similar["by"] == "both" and similar["threshold"] == 0.9
    assert similar["below_threshold"] is True  # an untrained model's caption matches nothing at 0.9
    assert len(similar["matches"]) == 4 and query.name not in [m["image"].split("/")[-1] for m in similar["matches"]]
    scores = [m["score"] for m in similar["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert all(os.path.isfile(m["image"]) for m in similar["matches"])
    with Image.open(figure) as img:
        assert img.format == "PNG"

    text = cli("-i", str(query), "--similar", "2", "--threshold", "0", "--data-root", str(FLICKR),
               "--index", str(tiny_model / "text_index.p"), *model_args(tiny_model),
               script="testing_caption_generator.py")
    lines = succeeded(text).splitlines()
    assert lines[1].startswith("  similar photos (text ranking, score >= 0.00)") and len(lines) == 4


def test_save_needs_similar(cli, tmp_path):
    errors = error_lines(cli("caption", "-i", str(PHOTOS[0]), "--save", str(tmp_path / "x.png")))
    assert errors == ["error: --save draws the similar photos: give --similar N too"]
    assert not (tmp_path / "x.png").exists()


# --- evaluate and self-critical training -------------------------------------------------------

def test_evaluate_command_on_the_fixture(cli, overfit, random_features, tmp_path):
    """A model that reproduces each photo's first caption, scored on the fixture's test split."""
    model, vocab, firsts, _ = overfit
    model.save(tmp_path / "model.keras")
    vocab.save(tmp_path / "tokenizer.p")
    save_pickle(random_features, tmp_path / "features.p")
    out = succeeded(cli("evaluate", "--data-root", str(FLICKR), "--split", "test", "--beam", "1",
                        "--features", str(tmp_path / "features.p"), "--model", str(tmp_path / "model.keras"),
                        "--tokenizer", str(tmp_path / "tokenizer.p"), "--out", str(tmp_path / "report.json")))
    report = json.loads((tmp_path / "report.json").read_text())
    names = open_layout(FLICKR).split("test")
    assert report["photos"] == len(names) == 4 and report["split"] == "test" and report["beam"] == 1
    assert report["captions"] == {n: firsts[n][0] for n in names}
    # Each caption is its photo's first reference, cleaned; on these photos cleaning and the PTB tokenizer agree.
    assert report["nltk_corpus_bleu"] == {f"BLEU-{n}": 100 for n in range(1, 5)}
    cider = report["coco"].pop("CIDEr")
    assert report["coco"] == {**{f"BLEU-{n}": 100 for n in range(1, 5)}, "METEOR": 100, "ROUGE-L": 100}
    assert cider > 100
    assert "4 photos, beam 1" in out and "MS-COCO toolkit: BLEU-1" in out and "nltk corpus BLEU: BLEU-1 100.0" in out


def test_self_critical_training_writes_a_run_that_captions(cli, short_run, tmp_path):
    folder, _ = short_run
    out = tmp_path / "scst"
    args = ["train", "--scst", "--from", str(folder / "run"), "--out-dir", str(out), "--data-root", str(FLICKR),
            "--descriptions", str(folder / "descriptions.txt"), "--features", str(folder / "features.p")]
    succeeded(cli(*args, "--epochs", "1"))
    assert {"epoch_00.keras", "epoch_01.keras", "best.keras", "tokenizer.p", "history.json", "scst.json",
            "scst.png"} <= {p.name for p in out.iterdir()}
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1]
    with Image.open(out / "scst.png") as image:
        assert image.format == "PNG" and min(image.size) > 100
    captioner, _ = load_captioner(out / "best.keras", out / "tokenizer.p")
    assert len(captioner.greedy(np.zeros((2, 2048), np.float32))) == 2
    succeeded(cli(*args, "--epochs", "2", "--resume"))
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1, 2]


@pytest.mark.parametrize("args, message", [
    (["--scst"], "needs both --scst and --from"),
    (["--from", "run"], "needs both --scst and --from"),
    (["--scst", "--from", "run", "--units", "8"], "--units does not apply to train --scst"),
])
def test_self_critical_training_refuses_incomplete_or_foreign_options(cli, args, message):
    result = cli("train", *args)
    assert error_lines(result) == [result.stderr.strip()] and message in result.stderr  # one line, nothing else


# --- photos in sub-folders of the image folder (COCO in Karpathy's split) -----------------------

def test_evaluate_index_and_caption_find_photos_in_sub_folders(cli, coco_root, tiny_model, tmp_path):
    report = tmp_path / "report.json"
    shown = succeeded(cli("evaluate", "--data-root", str(coco_root), "--split", "test", "--limit", "12", "--beam", "1",
                          "--out", str(report), *model_args(tiny_model)))
    assert shown.startswith("4 photos, beam 1") and "MS-COCO toolkit: BLEU-1" in shown
    assert sorted(json.loads(report.read_text())["captions"]) == sorted(open_layout(FLICKR).split("test"))

    built = succeeded(cli("index", "--data-root", str(coco_root), cwd=tmp_path))
    assert "110 captions of 22 photos (captions only)" in built
    query = coco_root / "images" / "val2017" / open_layout(FLICKR).split("test")[0]
    done = succeeded(cli("-i", str(query), "--similar", "3", "--threshold", "0", "--json",
                         "--index", str(tmp_path / "caption_index.p"), *model_args(tiny_model),
                         script="testing_caption_generator.py"))
    matches = json.loads(done)["similar"]["matches"]
    assert len(matches) == 3 and all(os.path.isfile(m["image"]) for m in matches)
    assert all(Path(m["image"]).parent.name in ("train2017", "val2017") for m in matches)


# --- data roots and caption files ---------------------------------------------------------------

def test_messy_caption_file_is_prepared_with_counts(cli, flickr_copy, tmp_path):
    captions = open_layout(flickr_copy).captions_path()
    raw = captions.read_bytes().replace(b"\n", b"\r\n")
    captions.write_bytes(raw + b"\r\n\r\nno tab on this line\r\nunknown.jpg#0\tA caf\xe9 by night .\r\n   \r\n")
    result = cli("prepare", "--data-root", str(flickr_copy), "--out", str(tmp_path / "descriptions.txt"))
    succeeded(result)
    assert "skipped 1 malformed lines" in result.stderr and "not UTF-8" in result.stderr
    assert "captions name 2 photos that are not in" in result.stderr  # unknown.jpg and the missing train photo
    descriptions = data.load_descriptions(tmp_path / "descriptions.txt")
    assert descriptions["unknown.jpg"] == ["a by night"] and "\r" not in (tmp_path / "descriptions.txt").read_text()
    assert sum(map(len, descriptions.values())) == 116


def test_caption_file_with_nothing_usable_stops_clearly(cli, flickr_copy, tmp_path):
    open_layout(flickr_copy).captions_path().write_bytes(b"\r\n\xff\xfe junk\r\nmore junk\n")
    result = cli("prepare", "--data-root", str(flickr_copy), "--out", str(tmp_path / "descriptions.txt"))
    assert len(error_lines(result)) == 1 and "no captions found" in result.stderr
    assert not (tmp_path / "descriptions.txt").exists()


def test_layout_named_on_the_command_line(cli, tmp_path):
    for photo in PHOTOS[:2]:
        shutil.copy(photo, tmp_path)
    (tmp_path / "my captions.csv").write_text(f"image,caption\n{PHOTOS[0].name},A dog runs .\n"
                                             f"{PHOTOS[1].name},\"Two cats, asleep .\"\n")
    out = tmp_path / "descriptions.txt"
    succeeded(cli("prepare", "--data-root", str(tmp_path), "--layout", "folder_csv", "--out", str(out)))
    assert data.load_descriptions(out) == {PHOTOS[0].name: ["a dog runs"], PHOTOS[1].name: ["two cats asleep"]}
    assert "found 0" in error_lines(cli("prepare", "--data-root", str(tmp_path), "--layout", "karpathy"))[0]
    assert "invalid choice: 'coco'" in cli("prepare", "--data-root", str(tmp_path), "--layout", "coco").stderr


def test_training_with_features_missing_photos_stops_before_any_work(cli, tmp_path, random_features):
    data.prepare(open_layout(FLICKR), tmp_path / "descriptions.txt")
    save_pickle({k: v for k, v in random_features.items() if k != "1022454332_6af2c1449a.jpg"},
                tmp_path / "features.p")
    result = cli("train", "--data-root", str(FLICKR), "--plot", "", "--out-dir", "run", "--units", "8", cwd=tmp_path)
    errors = error_lines(result)
    assert len(errors) == 1 and "the features lack 1 of" in errors[0], result.stderr
    assert "train split: 1 of 15 photos missing" in result.stderr  # the fixture really lacks one train photo
    assert not (tmp_path / "run").exists() and not (tmp_path / "tokenizer.p").exists()


# --- interruptions ------------------------------------------------------------------------------

def _features_run(root: Path, out: Path) -> list[str]:
    return ["features", "--data-root", str(root), "--out", str(out), *TINY, "--batch-size", "2", "--chunk-size", "2"]


def test_features_killed_half_way_resume_without_redoing_a_chunk(cli, flickr_copy, tmp_path):
    folder = open_layout(flickr_copy).image_dir()
    for photo in list(folder.iterdir()):
        shutil.copy(photo, folder / f"copy_{photo.name}")  # 44 photos: 22 chunks of 2
    total = len(list(folder.iterdir()))
    succeeded(cli(*_features_run(flickr_copy, tmp_path / "whole.p")))

    out = tmp_path / "features.p"
    partial = Path(str(out) + ".partial")
    process = subprocess.Popen(cli.command(*_features_run(flickr_copy, out)), cwd=ROOT, env=cli.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (partial / "part-00000.p").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    parts = sorted(partial.glob("part-*.p"))
    assert process.returncode == -signal.SIGKILL and not out.exists()
    assert 1 <= len(parts) < total // 2, len(parts)

    resumed = cli(*_features_run(flickr_copy, out))
    succeeded(resumed)
    done = 2 * len(parts)
    assert f"resuming: {done} of {total} photos already done" in resumed.stderr
    assert f"computing the features of {total - done} photos in {(total - done) // 2} chunks" in resumed.stderr
    assert not partial.exists()
    expected, got = load_features(tmp_path / "whole.p"), load_features(out)
    assert sorted(got) == sorted(expected) and len(got) == total
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


PIPELINE = """
import json, os, sys
written = []
real_replace = os.replace
def replace(src, dst, **kwargs):
    written.append(os.path.abspath(dst))
    return real_replace(src, dst, **kwargs)
os.replace = replace
from caption_generator.__main__ import main
root = sys.argv[1]
train = ["train", "--data-root", root, "--out-dir", "run", "--units", "8", "--embedding-dim", "8", "--batch-size", "32"]
codes = [main(["prepare", "--data-root", root]),
         main(["features", "--data-root", root, "--encoder-weights", "none", "--input-size", "71",
               "--chunk-size", "8"]),
         main(train + ["--resume"]),
         main(train + ["--epochs", "1"]),
         main(train + ["--epochs", "2", "--resume"])]
print(json.dumps({"codes": codes, "written": written}))
"""


def test_every_file_is_written_atomically_and_training_resumes(cli, tmp_path):
    """prepare, features and train (with --resume) write only through temporary files renamed into place."""
    result = subprocess.run([sys.executable, "-c", PIPELINE, str(FLICKR)], cwd=tmp_path, env=cli.env,
                            capture_output=True, text=True, timeout=600)
    report = json.loads(succeeded(result).splitlines()[-1])
    assert report["codes"] == [0, 0, 2, 0, 0]
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == \
        ["error: run: no checkpoint to resume from"]
    files = {str(p) for p in tmp_path.rglob("*") if p.is_file()}
    names = {Path(f).name for f in files}
    assert {"descriptions.txt", "features.p", "tokenizer.p"} <= names and ("model.png" in names) == HAS_DOT
    assert HAS_DOT or "model.png not drawn: Graphviz's dot is not on PATH" in result.stderr  # train goes on
    assert {"epoch_01.keras", "epoch_02.keras", "best.keras", "history.json", "loss.png", "config.json"} \
        <= {p.name for p in (tmp_path / "run").iterdir()}
    assert files <= set(report["written"]), files - set(report["written"])
    assert [h["epoch"] for h in json.loads((tmp_path / "run" / "history.json").read_text())] == [1, 2]
    assert not list(tmp_path.rglob("*.tmp*"))
