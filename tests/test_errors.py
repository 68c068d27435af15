"""Issue 6: bad input and interrupted work end in one clear error line (or succeed), never lose work."""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_generator import data
from caption_generator.features import extract_features, load_features, load_image
from caption_generator.files import CaptionError, load_pickle, save_pickle, write_text
from caption_generator.vocabulary import Vocabulary
from conftest import FLICKR, HAS_DOT, ROOT, TINY_INPUT

PHOTOS = data.list_images(data.image_dir(FLICKR))
TINY = ["--encoder-weights", "none", "--input-size", str(TINY_INPUT)]


def run(*args: str, cwd: Path | None = None, script: str | None = None) -> subprocess.CompletedProcess:
    """Run the command line (or testing_caption_generator.py) in a fresh Python."""
    command = [sys.executable, str(ROOT / script)] if script else [sys.executable, "-m", "caption_generator"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(command + list(args), cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The 'error:' lines of a run that failed cleanly (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --- photos -----------------------------------------------------------------------------------

def _save(img: Image.Image, path: Path, **options) -> Path:
    img.save(path, **options)
    return path


def _zero_png(path: Path, width: int, height: int) -> Path:
    """A real grayscale PNG of zeros: a few hundred KB that decode to width*height bytes (a bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    rows = bytes(width + 1) * 64  # 64 rows of zeros, each after its filter byte
    idat = b"".join(packer.compress(rows) for _ in range(height // 64)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height // 64 * 64, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small JPEG whose header says width x height (the header trick: nothing big on disk)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 99, 199)).save(buf, "JPEG")
    raw = bytearray(buf.getvalue())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(raw))
    return path


def odd_but_real_photos(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Photos in every mode a user may have, and the RGB colour each must load as."""
    folder.mkdir(exist_ok=True)
    _save(Image.new("RGBA", (40, 30), (255, 0, 0, 0)), folder / "alpha.png")  # transparent: white
    _save(Image.new("L", (40, 30), 100), folder / "gray.jpg", quality=95)
    _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), folder / "cmyk.jpg", quality=95)
    _save(Image.fromarray(np.full((30, 40), 65535, np.uint16)), folder / "sixteen.png")
    frames = [Image.new("RGB", (20, 20), c).convert("P") for c in [(0, 0, 255), (255, 0, 0)]]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    _save(Image.new("RGB", (1, 1), (0, 255, 0)), folder / "one_pixel.png")
    return {"alpha.png": (255, 255, 255), "gray.jpg": (100, 100, 100), "cmyk.jpg": (255, 0, 0),
            "sixteen.png": (255, 255, 255), "animated.gif": (0, 0, 255), "one_pixel.png": (0, 255, 0)}


def bad_photos(folder: Path) -> dict[str, str]:
    """Files with a photo's name that are not readable photos, and the error each must give."""
    folder.mkdir(exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("shopping list: milk, eggs\n")
    (folder / "truncated.jpg").write_bytes(PHOTOS[0].read_bytes()[:3000])
    _zero_png(folder / "bomb.png", 20000, 20000)
    _jpeg_claiming(folder / "huge.jpg", 20000, 20000)
    return {"empty.jpg": "not a readable image", "notes.jpg": "not a readable image",
            "truncated.jpg": "truncated", "bomb.png": "too large", "huge.jpg": "too large"}


def test_photos_of_any_mode_and_size_load_as_rgb(tmp_path):
    for name, rgb in odd_but_real_photos(tmp_path).items():
        x = load_image(tmp_path / name, TINY_INPUT)
        assert x.shape == (TINY_INPUT, TINY_INPUT, 3) and x.dtype == np.float32
        np.testing.assert_allclose((x + 1.0) * 127.5, np.broadcast_to(rgb, x.shape), atol=3, err_msg=name)


def test_unreadable_photos_fail_with_one_clear_line(tmp_path):
    for name, reason in bad_photos(tmp_path).items():
        with pytest.raises(CaptionError, match=reason) as raised:
            load_image(tmp_path / name)
        assert str(raised.value).startswith(str(tmp_path / name)) and "\n" not in str(raised.value)
    with pytest.raises(CaptionError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(CaptionError, match="not a file"):
        load_image(tmp_path)


MEASURE = """
import json, sys
from caption_generator.features import load_image
from caption_generator.files import CaptionError
found = {}
for path in sys.argv[1:]:
    try:
        found[path] = list(load_image(path, 299).shape)
    except CaptionError as e:
        found[path] = str(e)
# VmHWM: this process's own peak (ru_maxrss would include the parent's memory from before exec)
found["peak_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
print(json.dumps(found))
"""


def test_huge_photos_and_bombs_keep_memory_bounded(tmp_path):
    """Decompression bombs fail before decoding; a big real JPEG is decoded at reduced scale."""
    big = _save(Image.new("L", (9000, 9000), 128), tmp_path / "big.jpg", quality=5)  # 81 Mpixels, 0.5 MB
    files = [big, _zero_png(tmp_path / "bomb.png", 20000, 20000), _zero_png(tmp_path / "bomb2.png", 12000, 12000),
             _jpeg_claiming(tmp_path / "huge.jpg", 20000, 20000)]
    result = subprocess.run([sys.executable, "-c", MEASURE, *map(str, files)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    found = json.loads(result.stdout)
    assert found.pop(str(big)) == [299, 299, 3]
    assert all("too large to decode safely" in found.pop(str(f)) for f in files[1:])
    assert found["peak_mb"] < 200, found  # decoding big.jpg in full alone would take 81 MB + 243 MB as RGB


def test_extract_features_skips_bad_photos_and_does_the_rest(tmp_path, tiny_encoder, caplog):
    odd = odd_but_real_photos(tmp_path / "photos")
    bad = bad_photos(tmp_path / "photos")
    for photo in PHOTOS[:2]:
        shutil.copy(photo, tmp_path / "photos")
    features = extract_features(data.list_images(tmp_path / "photos"), tiny_encoder, out=tmp_path / "features.p",
                                batch_size=4, chunk_size=3, progress=False)
    assert sorted(features) == sorted([*odd, *(p.name for p in PHOTOS[:2])])
    assert all(np.isfinite(v).all() for v in features.values())
    assert sorted(load_features(tmp_path / "features.p")) == sorted(features)
    for name in bad:
        assert f"skipped: {tmp_path / 'photos' / name}" in caplog.text
    assert f"skipped {len(bad)} unreadable photos of {len(features) + len(bad)}" in caplog.text
    for name in list(odd) + [p.name for p in PHOTOS[:2]]:
        (tmp_path / "photos" / name).unlink()
    with pytest.raises(CaptionError, match="none of the 5 photos could be read"):
        extract_features(data.list_images(tmp_path / "photos"), tiny_encoder, progress=False)


# --- a tiny caption model for the command line ------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """An untrained caption model and its vocabulary, saved as the CLI reads them."""
    from caption_generator.model import build_model

    folder = tmp_path_factory.mktemp("model")
    vocab = Vocabulary.build(["a dog runs on the grass", "two children play in the water"])
    build_model(len(vocab), units=8, embedding_dim=8).save(folder / "model.keras")
    vocab.save(folder / "tokenizer.p")
    return folder / "model.keras", folder / "tokenizer.p"


def test_caption_script_reports_each_bad_photo_and_captions_the_rest(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    odd = odd_but_real_photos(folder)
    bad = bad_photos(folder)
    (folder / "folder.jpg").mkdir()  # a folder with a photo's name is not a photo
    for photo in PHOTOS[:2]:
        shutil.copy(photo, folder)
    model, tokenizer = tiny_model
    result = run("-i", str(folder), "-i", str(tmp_path / "missing.jpg"), "--model", str(model),
                 "--tokenizer", str(tokenizer), *TINY, script="testing_caption_generator.py")
    errors = error_lines(result)
    assert len(errors) == len(bad) + 1, result.stderr
    assert sum("missing.jpg: no such file or folder" in e for e in errors) == 1
    for name, reason in bad.items():
        assert sum(name in e and reason in e for e in errors) == 1, (name, errors)
    captioned = [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line]
    assert sorted(Path(p).name for p in captioned) == sorted([*odd, *(p.name for p in PHOTOS[:2])])


@pytest.mark.parametrize("case", ["vocabulary of another model", "truncated model", "crafted tokenizer"])
def test_model_files_that_cannot_work_stop_before_any_photo(tmp_path, tiny_model, case):
    model, tokenizer = tiny_model
    marker = tmp_path / "pwned"
    if case == "vocabulary of another model":
        tokenizer = tmp_path / "other.p"
        Vocabulary.build(["a cat sleeps", "a bird sings"]).save(tokenizer)
    elif case == "truncated model":
        model = tmp_path / "model.keras"
        model.write_bytes(tiny_model[0].read_bytes()[:2000])
    else:
        tokenizer = tmp_path / "tokenizer.p"
        tokenizer.write_bytes(_code_running_pickle(f"touch {marker}"))
    result = run("-i", str(PHOTOS[0]), "--model", str(model), "--tokenizer", str(tokenizer), *TINY,
                 script="testing_caption_generator.py")
    errors = error_lines(result)
    assert len(errors) == 1 and not result.stdout.strip(), result.stderr
    assert {"vocabulary of another model": "do not belong together", "truncated model": "not a readable caption model",
            "crafted tokenizer": "not a plain-data pickle"}[case] in errors[0]
    assert not marker.exists()


# --- pickles ----------------------------------------------------------------------------------

class _RunsCode:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _code_running_pickle(command: str) -> bytes:
    return pickle.dumps({"words": _RunsCode(command), "max_length": 5})


def test_crafted_pickles_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "features.p"
    crafted.write_bytes(_code_running_pickle(f"touch {marker}"))
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


# --- caption files and splits -----------------------------------------------------------------

def test_messy_caption_file_is_prepared_with_counts(flickr_copy, tmp_path):
    captions = flickr_copy / data.TEXT_DIR / data.CAPTIONS_FILE
    raw = captions.read_bytes().replace(b"\n", b"\r\n")
    captions.write_bytes(raw + b"\r\n\r\nno tab on this line\r\nunknown.jpg#0\tA caf\xe9 by night .\r\n   \r\n")
    result = run("prepare", "--data-root", str(flickr_copy), "--out", str(tmp_path / "descriptions.txt"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "skipped 1 malformed lines" in result.stderr and "not UTF-8" in result.stderr
    assert "captions name 2 photos that are not in" in result.stderr  # unknown.jpg and the missing train photo
    descriptions = data.load_descriptions(tmp_path / "descriptions.txt")
    assert descriptions["unknown.jpg"] == ["a by night"] and "\r" not in (tmp_path / "descriptions.txt").read_text()
    assert sum(map(len, descriptions.values())) == 116


def test_caption_file_with_nothing_usable_stops_clearly(flickr_copy, tmp_path):
    (flickr_copy / data.TEXT_DIR / data.CAPTIONS_FILE).write_bytes(b"\r\n\xff\xfe junk\r\nmore junk\n")
    result = run("prepare", "--data-root", str(flickr_copy), "--out", str(tmp_path / "descriptions.txt"))
    assert len(error_lines(result)) == 1 and "no captions found" in result.stderr
    assert not (tmp_path / "descriptions.txt").exists()


def test_training_with_features_missing_photos_stops_before_any_work(tmp_path, random_features):
    data.prepare(FLICKR, tmp_path / "descriptions.txt")
    save_pickle({k: v for k, v in random_features.items() if k != "1022454332_6af2c1449a.jpg"},
                tmp_path / "features.p")
    result = run("train", "--data-root", str(FLICKR), "--plot", "", "--out-dir", "run", "--units", "8", cwd=tmp_path)
    errors = error_lines(result)
    assert len(errors) == 1 and "the features lack 1 of" in errors[0], result.stderr
    assert "train split: 1 of 15 photos missing" in result.stderr  # the fixture really lacks one train photo
    assert not (tmp_path / "run").exists() and not (tmp_path / "tokenizer.p").exists()


# --- interruptions ----------------------------------------------------------------------------

def _features_run(root: Path, out: Path) -> list[str]:
    return ["features", "--data-root", str(root), "--out", str(out), *TINY, "--batch-size", "2", "--chunk-size", "2"]


def test_features_killed_half_way_resume_without_redoing_a_chunk(flickr_copy, tmp_path):
    folder = data.image_dir(flickr_copy)
    for photo in list(folder.iterdir()):
        shutil.copy(photo, folder / f"copy_{photo.name}")  # 44 photos: 22 chunks of 2
    total = len(list(folder.iterdir()))
    whole = run(*_features_run(flickr_copy, tmp_path / "whole.p"))
    assert whole.returncode == 0, whole.stderr[-2000:]

    out = tmp_path / "features.p"
    partial = Path(str(out) + ".partial")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "caption_generator", *_features_run(flickr_copy, out)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (partial / "part-00000.p").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    parts = sorted(partial.glob("part-*.p"))
    assert process.returncode == -signal.SIGKILL and not out.exists()
    assert 1 <= len(parts) < total // 2, len(parts)

    resumed = run(*_features_run(flickr_copy, out))
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    stderr = resumed.stderr
    done = 2 * len(parts)
    assert f"resuming: {done} of {total} photos already done" in stderr
    assert f"computing the features of {total - done} photos in {(total - done) // 2} chunks" in stderr
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


def test_every_file_is_written_atomically_and_training_resumes(tmp_path):
    """prepare, features and train (with --resume) write only through temporary files renamed into place."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", PIPELINE, str(FLICKR)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
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


def test_resume_after_a_kill_between_checkpoint_and_history(tmp_path, descriptions, random_features):
    from caption_generator.model import build_model
    from caption_generator.train import caption_arrays, compile_model, fit, make_dataset

    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    batches = make_dataset(*caption_arrays(descriptions, vocab, random_features), batch_size=64)

    def model(size: int = len(vocab)):
        m = build_model(size, units=8, embedding_dim=8)
        compile_model(m)
        return m

    _, history = fit(model(), batches, batches, tmp_path, epochs=2, verbose=0)
    write_text(tmp_path / "history.json", json.dumps(history[:1]))  # killed after epoch_02.keras, before history
    _, resumed = fit(model(), batches, batches, tmp_path, epochs=3, resume=True, verbose=0)
    assert [h["epoch"] for h in resumed] == [1, 2, 3] and resumed[0] == history[0]
    with pytest.raises(CaptionError, match="resume with the same data"):
        fit(model(len(vocab) + 1), batches, batches, tmp_path, epochs=4, resume=True, verbose=0)
    (tmp_path / "history.json").unlink()
    with pytest.raises(CaptionError, match="no checkpoint to resume from"):
        fit(model(), batches, batches, tmp_path, epochs=4, resume=True, verbose=0)
