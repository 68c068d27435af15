"""Photo features: Xception (ImageNet, no top, average pooling) -> 2048 floats per photo."""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import warnings
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TypeVar, Union

import numpy as np
from PIL import Image, ImageOps

from .errors import CaptionError
from .files import load_pickle, save_pickle, write_text
from .onnx_runtime import IMAGENET, OnnxEncoder

if TYPE_CHECKING:
    from .backend import keras

T, R = TypeVar("T"), TypeVar("R")
Encoder = Union["keras.Model", OnnxEncoder]  # build_encoder's Keras model, or its export on ONNX Runtime

log = logging.getLogger(__name__)

DEFAULT_FEATURES = "features.p"
DEFAULT_INPUT_SIZE = 299
DEFAULT_BATCH_SIZE = 8  # photos per encoder batch
DEFAULT_CHUNK_SIZE = 256  # photos per saved chunk of a resumable run
FEATURE_SIZE = 2048
WEIGHTS_ENV = "XCEPTION_WEIGHTS"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL image (alpha, palette, grayscale, CMYK, 16-bit, float) to 8-bit RGB."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "F" and values.max() > 255 else 255.0
        if img.mode == "F":
            top = max(float(values.max()), 1e-12)
        img = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_image(path: str | os.PathLike, input_size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """Read one photo as the encoder's input: RGB, squashed to input_size x input_size,
    scaled to [-1, 1] as Xception's preprocess_input does. Used for training and inference alike.

    Raises CaptionError for anything that is not a readable image.
    """
    path = Path(path)
    if not path.exists():
        raise CaptionError(f"{path}: no such file")
    if not path.is_file():
        raise CaptionError(f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of damaged metadata and big images; we decode or raise
            with Image.open(path) as img:
                img.draft("RGB", (input_size, input_size))  # JPEG: decode big photos at reduced scale
                if Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
                img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img).resize((input_size, input_size), Image.BILINEAR)
    except Image.DecompressionBombError:
        raise CaptionError(f"{path}: image too large to decode safely") from None
    except Exception as e:  # Pillow raises many types (struct.error, IndexError, ...) for damaged files
        reason = (str(e).splitlines() or [""])[0].split(" '")[0][:200]
        raise CaptionError(f"{path}: not a readable image ({reason or type(e).__name__})") from None
    return np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0


def encoder_weights(path: str | os.PathLike | None = None) -> str | None:
    """Where the ImageNet Xception weights come from: the given file, $XCEPTION_WEIGHTS, or Keras's
    download ("imagenet"). The value "none" gives random weights, for tests where weights don't matter."""
    path = path or os.environ.get(WEIGHTS_ENV)
    if not path:
        return IMAGENET
    if str(path).lower() == "none":
        return None
    if not Path(path).is_file():
        raise CaptionError(f"{path}: encoder weights file not found")
    return str(path)


def build_encoder(weights: str | None = IMAGENET, input_size: int = DEFAULT_INPUT_SIZE, bfloat16: bool = False):
    """Xception without its top, global average pooling: a photo batch -> (batch, 2048).

    `bfloat16` computes in bfloat16 (Keras's mixed_bfloat16 policy): about 3x faster on CPUs with
    AVX-512 BF16, features within a cosine of 0.9999 of float32; not the default."""
    from .backend import keras

    if weights is None:
        keras.utils.set_random_seed(0)  # the same random weights in every run, so killed runs can resume
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if bfloat16 else "float32")
    try:
        return keras.applications.Xception(
            weights=weights, include_top=False, pooling="avg", input_shape=(input_size, input_size, 3))
    except Exception as e:  # Keras raises a bare Exception when the download fails
        hint = f"; without internet, give a local file with --encoder-weights or ${WEIGHTS_ENV}" \
            if weights == IMAGENET else ""
        raise CaptionError(f"cannot load the Xception weights ({weights}): {str(e).splitlines()[0]}{hint}") from None
    finally:
        keras.config.set_dtype_policy(policy)


_compiled: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # encoder -> its compiled forward pass


def compiled_forward(encoder):
    """The encoder's forward pass as a tf.function, kept per encoder, so that repeated encode calls
    (a notebook captioning photo after photo, or two encoders used in turn) trace it only once."""
    from .backend import tf

    if encoder not in _compiled:
        _compiled[encoder] = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
    return _compiled[encoder]


def forward_pass(encoder: Encoder) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """An encoder's forward pass on a batch of photos (numpy in, float32 features out) and its input size:
    an OnnxEncoder's session, or a Keras encoder's compiled forward pass."""
    if isinstance(encoder, OnnxEncoder):
        return encoder, encoder.input_size
    forward = compiled_forward(encoder)
    return lambda images: np.asarray(forward(images), np.float32), int(encoder.input_shape[1])


def encoder_identity(encoder: Encoder) -> dict:
    """What an encoder's features depend on (input size, architecture, dtype, weights), the same for a Keras
    encoder and its ONNX export: a resumed extract_features run must use the same."""
    if isinstance(encoder, OnnxEncoder):
        return encoder.identity
    return {"input_size": int(encoder.input_shape[1]), "encoder": encoder.name, "dtype": encoder.dtype_policy.name,
            "weights": hashlib.sha256(np.asarray(encoder.weights[0]).tobytes()).hexdigest()}


def read_ahead(items: Iterable[T], read: Callable[[T], R], ahead: int) -> Iterator[R]:
    """read(item) of each item, in order, with up to `ahead` items read in threads while the caller works
    (Pillow and numpy let go of the GIL while they decode, resize and scale)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(read, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def encode(paths: Sequence[Path], encoder: Encoder, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True
           ) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """Run photos through the encoder (Keras or ONNX Runtime) in batches, the next batches read by threads
    during each forward pass.

    Yields (path, 2048 features, None) or (path, None, error message) in the input order;
    an unreadable photo is reported and skipped, the rest are done.
    """
    from tqdm.auto import tqdm

    forward, input_size = forward_pass(encoder)

    def read(path: Path) -> tuple[Path, np.ndarray | None, str | None]:
        try:
            return path, load_image(path, input_size), None
        except CaptionError as e:
            return path, None, str(e)

    photos = read_ahead(paths, read, 2 * batch_size)
    with tqdm(total=len(paths), unit="img", desc="features", disable=not progress) as bar:
        while batch := list(itertools.islice(photos, batch_size)):
            images = [image for _, image, _ in batch if image is not None]
            vectors = iter(forward(np.stack(images)) if images else [])
            bar.update(len(batch))  # before yielding: a caller may stop at the last photo
            for path, image, error in batch:
                yield path, (None if error else next(vectors)), error


def extract_features(paths: Sequence[Path], encoder: Encoder, out: str | os.PathLike | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True
                     ) -> dict[str, np.ndarray]:
    """Features of many photos as {file name: float32[2048]}, written to `out` (features.p).

    With `out`, work is saved in chunks to `<out>.partial/` as it goes, so a run that is
    killed resumes where it stopped; the chunks are merged into `out` at the end.
    Unreadable photos are skipped with a warning.
    """
    paths = sorted(Path(p) for p in paths)
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise CaptionError("two photos share a file name; features are keyed by file name")
    partial = Path(str(out) + ".partial") if out else None
    run = {**encoder_identity(encoder), "chunk_size": chunk_size,
           "photos": hashlib.sha256("\n".join(names).encode()).hexdigest()}
    if partial and partial.is_dir():
        try:
            previous = json.loads((partial / "run.json").read_text())
        except (OSError, ValueError):
            previous = None
        if previous != run:
            log.warning("%s: left by a run with other settings or photos; starting over", partial)
            shutil.rmtree(partial)
    if partial:
        partial.mkdir(parents=True, exist_ok=True)
        write_text(partial / "run.json", json.dumps(run))

    chunks = [paths[i:i + chunk_size] for i in range(0, len(paths), chunk_size)]
    done: dict[int, dict] = {}
    for index in range(len(chunks)):
        part = partial / f"part-{index:05d}.p" if partial else None
        if part and part.is_file():
            done[index] = load_pickle(part)
    todo = [i for i in range(len(chunks)) if i not in done]
    if done:
        log.info("resuming: %d of %d photos already done", sum(len(chunks[i]) for i in done), len(paths))

    todo_paths = [p for i in todo for p in chunks[i]]
    log.info("computing the features of %d photos in %d chunks", len(todo_paths), len(todo))
    results = encode(todo_paths, encoder, batch_size=batch_size, progress=progress)
    for index in todo:
        part_data: dict = {"features": {}, "failed": {}}
        for path, vector, error in (next(results) for _ in chunks[index]):
            if error:
                part_data["failed"][path.name] = error
            else:
                part_data["features"][path.name] = vector
        done[index] = part_data
        if partial:
            save_pickle(part_data, partial / f"part-{index:05d}.p")

    features: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    for index in range(len(chunks)):
        features.update(done[index]["features"])
        failed.update(done[index]["failed"])
    for error in failed.values():
        log.warning("skipped: %s", error)
    if not features:
        raise CaptionError(f"none of the {len(paths)} photos could be read")
    if failed:
        log.warning("skipped %d unreadable photos of %d", len(failed), len(paths))
    if out:
        save_pickle(features, out)
        shutil.rmtree(partial)
    return features


def shard(paths: Sequence[Path], index: int, count: int) -> list[Path]:
    """Worker `index` of `count`'s share of the photos: every count-th of the sorted list."""
    return sorted(Path(p) for p in paths)[index::count]


def part_path(out: str | os.PathLike, index: int, count: int) -> Path:
    """Where worker `index` of `count` writes the features of its share (beside `out`)."""
    return Path(f"{out}.part-{index + 1}-of-{count}")


def merge_features(out: str | os.PathLike) -> dict[str, np.ndarray]:
    """Merge the workers' parts (`<out>.part-I-of-N`, all N of them) into `out`; the parts are then removed."""
    parts = sorted(Path(out).parent.glob(f"{Path(out).name}.part-*-of-*"))
    counts = {p.name.rsplit("-of-", 1)[1] for p in parts}
    if len(counts) != 1 or len(parts) != int(counts.pop()):
        raise CaptionError(f"{out}: found {len(parts)} worker parts ({', '.join(p.name for p in parts) or 'none'}); "
                           "each worker must finish its part before merging")
    features: dict[str, np.ndarray] = {}
    for part in parts:
        features.update(load_features(part))
    save_pickle(features, out)
    for part in parts:
        part.unlink()
    return features


def load_features(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load features.p (a plain {file name: array} pickle; nothing else is accepted)."""
    features = load_pickle(path)
    if not isinstance(features, dict) or not all(isinstance(v, np.ndarray) for v in features.values()):
        raise CaptionError(f"{path}: not a features file ({{photo name: array}})")
    return features
