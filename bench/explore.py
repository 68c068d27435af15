"""Where feature extraction spends its time, and what the hardware offers for the encoder.

    python -m bench.explore [--photos 48]

Profiles encode() (decoding vs forward pass), then measures the bare Xception forward pass
(images/s on ready tensors) for batch sizes, jit_compile (XLA), bfloat16 (with the cosine
similarity of its features to float32's) and TensorFlow thread settings (each in a process of its own).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import DATA_ROOT, ROOT, split_photos, timed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def images_per_second(forward, images: np.ndarray, batch: int, repeats: int = 2) -> float:
    """Best of `repeats` passes over `images` in batches (after one warm-up batch)."""
    import tensorflow as tf

    batches = [tf.constant(images[i:i + batch]) for i in range(0, len(images) - batch + 1, batch)]
    forward(batches[0]).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            forward(b).numpy()
        best = min(best, time.perf_counter() - start)
    return len(batches) * batch / best


def load(paths: list[Path], size: int) -> np.ndarray:
    from caption_generator.features import load_image
    return np.stack([load_image(p, size) for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from caption_generator.features import build_encoder, encode, encoder_weights, load_image

    paths = split_photos(args.data_root, "test", args.photos)
    encoder = build_encoder(encoder_weights())
    images = load(paths, 299)
    forward = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
    if args.forward_only:
        print(json.dumps({"img_s": images_per_second(forward, images, 8)}))
        return
    results: dict = {}

    results["load_image_ms"] = 1000 * timed(lambda: [load_image(p, 299) for p in paths]) / len(paths)
    results["forward_b8_ms"] = 1000 / images_per_second(forward, images, 8)
    list(encode(paths[:8], encoder, progress=False))
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    list(encode(paths, encoder, progress=False))
    profile.disable()
    results["encode_ms"] = 1000 * (time.perf_counter() - start) / len(paths)
    stats = pstats.Stats(profile).sort_stats("cumulative")
    stats.print_stats(12)

    results["batch"] = {b: images_per_second(forward, images, b) for b in (1, 4, 8, 16, 32) if b <= len(images)}
    jit = tf.function(lambda x: encoder(x, training=False), jit_compile=True)
    results["jit_compile_b8"] = images_per_second(jit, images, 8)

    keras.config.set_dtype_policy("mixed_bfloat16")
    bf16 = build_encoder(encoder_weights())
    keras.config.set_dtype_policy("float32")
    forward16 = tf.function(lambda x: bf16(x, training=False), reduce_retracing=True)
    results["bfloat16_b8"] = images_per_second(forward16, images, 8)
    a = np.concatenate([forward(tf.constant(images[i:i + 8])).numpy() for i in range(0, len(images), 8)])
    b = np.concatenate([np.asarray(forward16(tf.constant(images[i:i + 8])), np.float32)
                        for i in range(0, len(images), 8)])
    cosine = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    results["bfloat16_cosine_to_float32"] = {"mean": float(cosine.mean()), "min": float(cosine.min()),
                                             "photos": len(paths)}

    threads = {}
    for intra, inter in ((1, 1), (2, 1), (2, 2), (4, 2)):
        env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(intra), TF_NUM_INTEROP_THREADS=str(inter))
        done = subprocess.run([sys.executable, "-m", "bench.explore", "--forward-only", "--photos", "24"], env=env,
                              capture_output=True, text=True, check=True, cwd=ROOT)
        threads[f"intra {intra}, inter {inter}"] = json.loads(done.stdout.strip().splitlines()[-1])["img_s"]
    results["threads_b8"] = threads
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
