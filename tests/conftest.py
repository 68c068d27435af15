"""Shared fixtures: the small real Flickr8k fixture in tests/data, the same photos in other layouts, photos
of every odd kind, and tiny models trained on them or saved as the command line reads them."""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CACHE = Path(tempfile.mkdtemp(prefix="caption_generator_cache."))  # exported encoders; never the user's cache
os.environ["CAPTION_GENERATOR_CACHE"] = str(CACHE)
os.environ.pop("CAPTION_GENERATOR_RUNTIME", None)  # each test chooses its runtime, or takes the default

import numpy as np
import pytest
from PIL import Image

from caption_generator.layouts import SPLITS, open_layout

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
FLICKR = DATA / "flickr8k"
TINY_INPUT = 71  # Xception's smallest input: fast, for tests where the weights don't matter
TINY = ["--encoder-weights", "none", "--input-size", str(TINY_INPUT)]  # the command line's options for it
PHOTOS = open_layout(FLICKR).photos()
HAS_DOT = shutil.which("dot") is not None  # Graphviz, for model.png
NO_DOT = "Graphviz's dot is not on PATH: model.png is not drawn (install Graphviz to check it)"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def descriptions():
    from caption_generator import data
    return data.clean_descriptions(open_layout(FLICKR).captions())


@pytest.fixture(scope="session")
def tiny_encoder():
    from caption_generator.features import build_encoder
    import keras
    keras.utils.set_random_seed(0)
    return build_encoder(None, TINY_INPUT)


@pytest.fixture(scope="session")
def random_features(descriptions):
    """Distinct random 'photo features' per photo, so decoder tests don't depend on the encoder."""
    rng = np.random.default_rng(0)
    return {name: rng.normal(size=2048).astype(np.float32) for name in descriptions}


@pytest.fixture(scope="session")
def overfit(descriptions, random_features):
    """A tiny merge model fitted until it reproduces the first caption of each photo."""
    import keras
    from caption_generator.model import build_model
    from caption_generator.train import caption_arrays, compile_model, make_dataset
    from caption_generator.vocabulary import Vocabulary

    firsts = {name: texts[:1] for name, texts in descriptions.items()}
    vocab = Vocabulary.build(c for texts in firsts.values() for c in texts)
    keras.utils.set_random_seed(0)
    model = build_model(len(vocab), units=64, embedding_dim=32, dropout=0.0)
    compile_model(model, learning_rate=1e-2)
    data = make_dataset(*caption_arrays(firsts, vocab, random_features), batch_size=8, shuffle=False)
    history = model.fit(data, epochs=150, verbose=0, shuffle=False)
    return model, vocab, firsts, history.history["loss"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, descriptions, tiny_encoder) -> Path:
    """A folder with a tiny untrained caption model (model.keras), its vocabulary (tokenizer.p) and the
    fixture photos' features at TINY_INPUT (features.p), as the command line reads them."""
    import keras
    from caption_generator.features import extract_features
    from caption_generator.model import build_model
    from caption_generator.vocabulary import Vocabulary

    folder = tmp_path_factory.mktemp("tiny_model")
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    keras.utils.set_random_seed(0)
    build_model(len(vocab), units=8, embedding_dim=8).save(folder / "model.keras")
    vocab.save(folder / "tokenizer.p")
    extract_features(PHOTOS, tiny_encoder, folder / "features.p", progress=False)
    return folder


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, random_features):
    """A tiny cross-entropy run trained briefly on the fixture's train photos (folder/run: best.keras and
    tokenizer.p), with descriptions.txt and features.p beside it: the folder and the splits."""
    import keras
    from caption_generator import data
    from caption_generator.files import save_pickle
    from caption_generator.model import build_model
    from caption_generator.train import caption_arrays, compile_model, make_dataset
    from caption_generator.vocabulary import Vocabulary

    folder = tmp_path_factory.mktemp("short_run")
    layout = open_layout(FLICKR)
    data.prepare(layout, folder / "descriptions.txt")
    save_pickle(random_features, folder / "features.p")
    splits = data.load_splits(layout, folder / "descriptions.txt")
    vocab = Vocabulary.build(c for texts in splits["train"].values() for c in texts)
    keras.utils.set_random_seed(0)
    model = build_model(len(vocab), units=32, embedding_dim=16, dropout=0.0)
    compile_model(model, learning_rate=1e-2)
    model.fit(make_dataset(*caption_arrays(splits["train"], vocab, random_features), batch_size=16, shuffle=False),
              epochs=60, verbose=0, shuffle=False)
    (folder / "run").mkdir()
    model.save(folder / "run" / "best.keras")
    vocab.save(folder / "run" / "tokenizer.p")
    return folder, splits


@pytest.fixture()
def flickr_copy(tmp_path):
    """A writable copy of the fixture data root."""
    return Path(shutil.copytree(FLICKR, tmp_path / "flickr8k"))


def karpathy_coco(root: Path) -> None:
    """Lay the fixture out as Karpathy's dataset_coco.json does COCO's: the photos in sub-folders of the
    image folder (images/train2017/, images/val2017/), each record naming its sub-folder as "filepath"."""
    flickr = open_layout(FLICKR)
    split_of = {name: split for split in SPLITS for name in flickr.split(split)}
    records = []
    for name, texts in flickr.captions().items():
        split = split_of.get(name, "train")
        folder = "train2017" if split == "train" else "val2017"
        if flickr.photo_path(name).is_file():
            (root / "images" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(flickr.photo_path(name), root / "images" / folder / name)
        records.append({"filepath": folder, "filename": name, "split": {"dev": "val"}.get(split, split),
                        "sentences": [{"raw": t} for t in texts]})
    # the layout finds its image folder by the first record's photo: put one that is there first
    records.sort(key=lambda r: not (root / "images" / r["filepath"] / r["filename"]).is_file())
    (root / "dataset_coco.json").write_text(json.dumps({"images": records, "dataset": "coco"}))


@pytest.fixture()
def coco_root(tmp_path) -> Path:
    """The fixture data root with its photos in sub-folders, as COCO's Karpathy split has them."""
    karpathy_coco(tmp_path / "coco")
    return tmp_path / "coco"


# --- photos of every kind a user may have ------------------------------------------------------

def _save(img: Image.Image, path: Path, **options) -> Path:
    img.save(path, **options)
    return path


def zero_png(path: Path, width: int, height: int) -> Path:
    """A real grayscale PNG of zeros: a few hundred KB that decode to width*height bytes (a bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    rows = bytes(width + 1) * 64  # 64 rows of zeros, each after its filter byte
    idat = b"".join(packer.compress(rows) for _ in range(height // 64)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height // 64 * 64, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
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
    zero_png(folder / "bomb.png", 20000, 20000)
    jpeg_claiming(folder / "huge.jpg", 20000, 20000)
    return {"empty.jpg": "not a readable image", "notes.jpg": "not a readable image",
            "truncated.jpg": "truncated", "bomb.png": "too large", "huge.jpg": "too large"}


class _RunsCode:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def code_running_pickle(command: str) -> bytes:
    """A tokenizer.p-like pickle that runs a shell command when an unrestricted unpickler loads it."""
    return pickle.dumps({"words": _RunsCode(command), "max_length": 5})
