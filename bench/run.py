"""Benchmark our pipeline against the tutorial baseline (bench/baseline.py), side by side on the same inputs.

    python -m bench.run [--quick] [--json results.json]

Measures (1) feature extraction from JPEG files: ours on Keras and on ONNX Runtime, the baseline and
the bare Xception forward pass on ready tensors; (2) training seconds per epoch and peak memory, each in
its own process; (3) captioning ms per photo from known features, on Keras and on ONNX Runtime;
(4) testing_caption_generator.py end to end on each runtime, and the TensorFlow floor: a process that
imports Keras, builds Xception and runs one photo. Prints a table, the ratios against the targets of the
issues, and the results as JSON. The encoder is exported to ONNX first if it is not in the cache.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import DATA_ROOT, ROOT, median, split_photos, timed, timed_call

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZES = {
    "quick": {"photos": 8, "repeats": 2, "captions": 128, "epochs": 2, "memory_captions": 0,
              "caption_photos": 2, "e2e_photos": 5},
    "full": {"photos": 64, "repeats": 3, "captions": 2000, "epochs": 3, "memory_captions": 30000,
             "caption_photos": 20, "e2e_photos": 65},
}
BATCH = 8  # the CLI's default encoder batch size
TF_FLOOR = """import sys, keras
from caption_generator.features import load_image
encoder = keras.applications.Xception(weights=sys.argv[1], include_top=False, pooling="avg")
encoder.predict(load_image(sys.argv[2])[None], verbose=0)
"""  # the least a process that captions with TensorFlow does: import Keras, build Xception, run one photo
EPOCH_CAPTIONS = 30000  # the Flickr8k train split: 6000 photos x 5 captions


def train_descriptions(data_root: Path):
    """The cleaned captions of the train split and the vocabulary built from them (as training does)."""
    from caption_generator import data
    from caption_generator.config import TrainConfig
    from caption_generator.layouts import open_layout
    from caption_generator.vocabulary import Vocabulary

    layout = open_layout(data_root)
    clean = data.clean_descriptions(layout.captions())
    train = data.split_descriptions(clean, layout.split("train"), "train")
    return train, Vocabulary.build((c for texts in train.values() for c in texts), TrainConfig().min_count)


def first_captions(descriptions: dict[str, list[str]], count: int) -> dict[str, list[str]]:
    """The first photos' captions, `count` captions in all (whole photos; the last may be cut)."""
    chosen, total = {}, 0
    for name, texts in descriptions.items():
        if total >= count:
            break
        chosen[name] = texts[:count - total]
        total += len(chosen[name])
    return chosen


def train_worker(kind: str, data_root: Path, captions: int, epochs: int) -> dict:
    """Run in a process of its own: `epochs` timed training epochs over the first `captions` captions,
    after a short warm-up; photo features are random (training time does not depend on them)."""
    import keras

    descriptions, vocab = train_descriptions(data_root)
    subset = first_captions(descriptions, captions)
    rng = np.random.default_rng(0)
    features = {name: rng.random((1, 2048), np.float32) for name in subset}
    keras.utils.set_random_seed(0)
    if kind == "ours":
        from caption_generator.model import build_model
        from caption_generator.train import caption_arrays, compile_model, make_dataset

        model = build_model(len(vocab))
        compile_model(model)
        dataset = make_dataset(*caption_arrays(subset, vocab, {n: f[0] for n, f in features.items()}))
        model.fit(dataset.take(2), verbose=0)
        epoch = lambda: model.fit(dataset, epochs=1, verbose=0)  # noqa: E731
    else:
        from bench import baseline

        model = baseline.define_model(len(vocab), vocab.max_length)
        baseline.train_epoch(model, subset, features, vocab, steps=2)
        epoch = lambda: baseline.train_epoch(model, subset, features, vocab)  # noqa: E731
    times = [timed(epoch) for _ in range(epochs)]
    return {"captions": sum(map(len, subset.values())), "vocabulary": len(vocab), "epoch_s": times,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(kind: str, data_root: Path, captions: int, epochs: int) -> dict:
    """train_worker in a fresh Python process (fair peak memory)."""
    command = [sys.executable, "-m", "bench.run", "--worker", kind, "--data-root", str(data_root),
               "--captions", str(captions), "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{kind} training worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_features(paths: list[Path], encoder, encoder_bf16, onnx_encoder, repeats: int) -> tuple[dict, np.ndarray]:
    """Images/s from JPEG files: ours (encode) on Keras, with the opt-in bfloat16 encoder and on ONNX Runtime,
    the baseline, and the bare forward passes (Keras and ONNX Runtime) on ready tensors; repeats interleaved
    so that noise hits all alike. Returns the results and our (float32, Keras) features."""
    import tensorflow as tf

    from bench import baseline
    from caption_generator.features import encode, load_image

    size = int(encoder.input_shape[1])
    ready = [np.stack([load_image(p, size) for p in paths[i:i + BATCH]]) for i in range(0, len(paths), BATCH)]
    ready_tf = [tf.constant(batch) for batch in ready]
    forward = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)

    def bare():
        for batch in ready_tf:
            forward(batch).numpy()

    def bare_onnx():
        for batch in ready:
            onnx_encoder(batch)

    def ours(model=encoder):
        return np.stack([v for _, v, _ in encode(paths, model, batch_size=BATCH, progress=False)])

    bare(), bare_onnx(), ours(), ours(encoder_bf16), ours(onnx_encoder)  # warm-up: tracing, first runs
    baseline.extract_features(paths[:1], encoder)
    runs: dict[str, list[float]] = {k: [] for k in ("ours", "ours_bfloat16", "ours_onnx", "bare", "bare_onnx",
                                                    "baseline")}
    for _ in range(repeats):
        seconds, ours_features = timed_call(ours)
        runs["ours"].append(seconds)
        seconds, bf16_features = timed_call(lambda: ours(encoder_bf16))
        runs["ours_bfloat16"].append(seconds)
        seconds, onnx_features = timed_call(lambda: ours(onnx_encoder))
        runs["ours_onnx"].append(seconds)
        runs["bare"].append(timed(bare))
        runs["bare_onnx"].append(timed(bare_onnx))
        seconds, theirs = timed_call(lambda: baseline.extract_features(paths, encoder))
        runs["baseline"].append(seconds)
    theirs = np.concatenate([theirs[p.name] for p in paths])
    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    result = {f"{k}_img_s": len(paths) / median(v) for k, v in runs.items()}
    result |= {"photos": len(paths), "batch_size": BATCH, "input_size": size, "runs_s": runs,
               "cosine_ours_vs_baseline_mean": float(cosine(ours_features, theirs).mean()),
               "cosine_bfloat16_vs_float32_min": float(cosine(bf16_features, ours_features).min()),
               "onnx_vs_keras_max_abs_difference": float(np.abs(onnx_features - ours_features).max())}
    return result, ours_features


def caption_model(data_root: Path, folder: Path):
    """The shipped caption model if there is one, else an untrained one of the default size with a
    vocabulary built from the train split, saved in `folder` with its ONNX decoders. Returns (captioner on
    Keras, captioner on ONNX Runtime, CLI args, which)."""
    import keras

    from caption_generator import load_captioner
    from caption_generator.export import export_decoders
    from caption_generator.model import build_model
    from caption_generator.onnx_runtime import DECODER_FILES, OnnxCaptioner
    from caption_generator.shipped import MANIFEST

    if MANIFEST.is_file():
        return load_captioner(runtime="keras")[0], load_captioner(runtime="onnx")[0], [], \
            "shipped model (models/shipped/)"
    _, vocab = train_descriptions(data_root)
    keras.utils.set_random_seed(0)
    model = build_model(len(vocab))
    model.save(folder / "caption_model.keras")
    vocab.save(folder / "tokenizer.p")
    export_decoders([model], folder)
    args = ["--model", str(folder / "caption_model.keras"), "--tokenizer", str(folder / "tokenizer.p")]
    captioner = load_captioner([folder / "caption_model.keras"], folder / "tokenizer.p")[0]
    return captioner, OnnxCaptioner(*(folder / name for name in DECODER_FILES.values()), vocab), args, \
        "untrained model of the default size, train-split vocabulary (speed does not depend on training)"


def bench_captioning(captioner, onnx_captioner, features: np.ndarray, repeats: int) -> dict:
    """ms per photo from known features: ours greedy (batched and one photo per call) and beam 3, on Keras
    and on ONNX Runtime, and the baseline's greedy decoding with the same weights."""
    from bench import baseline

    vocab = captioner.vocab
    theirs_model = baseline.define_model(len(vocab), vocab.max_length)
    baseline.copy_weights(captioner.models[0], theirs_model)

    def theirs():
        return [baseline.generate_desc(theirs_model, vocab, f[None], vocab.max_length) for f in features]

    jobs = {}
    for runtime, ours in (("", captioner), ("onnx_", onnx_captioner)):
        jobs |= {f"ours_{runtime}greedy": lambda c=ours: c.greedy(features),
                 f"ours_{runtime}greedy_one_by_one": lambda c=ours: [c.greedy(f[None])[0] for f in features],
                 f"ours_{runtime}beam3": lambda c=ours: c.beam_search(features, beam=3)}
    for job in jobs.values():
        job()  # warm-up: tracing, first runs
    jobs["baseline_greedy"] = theirs
    baseline.generate_desc(theirs_model, vocab, features[:1], vocab.max_length)  # warm-up: tracing
    runs: dict[str, list[float]] = {k: [] for k in jobs}
    captions = {}
    for _ in range(repeats):
        for name, job in jobs.items():
            seconds, captions[name] = timed_call(job)
            runs[name].append(seconds)
    ours, baseline_captions = captions["ours_greedy"], captions["baseline_greedy"]
    longest = vocab.max_length - 2
    same = sum(a.split() == b.split()[:longest] for a, b in zip(ours, baseline_captions))
    same_onnx = sum(a == b for a, b in zip(ours, captions["ours_onnx_greedy"]))
    result = {f"{k}_ms": 1000 * median(v) / len(features) for k, v in runs.items()}
    return result | {"photos": len(features), "same_greedy_captions": same, "same_greedy_captions_onnx": same_onnx,
                     "mean_words_greedy": float(np.mean([len(c.split()) for c in ours])), "runs_s": runs}


def wall_time(command: list[str], env: dict | None = None, lines: int | None = None) -> float:
    """Seconds that a command takes, from start to exit; it must succeed (and print `lines` unindented lines:
    one caption per photo, a flagged caption's warning being indented below it)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    printed = [line for line in done.stdout.splitlines() if line.strip() and not line.startswith(" ")]
    if done.returncode or (lines is not None and len(printed) != lines):
        raise RuntimeError(f"{' '.join(command[:3])} ... failed:\n{done.stderr[-3000:]}")
    return wall


def bench_end_to_end(paths: list[Path], model_args: list[str], repeats: int, runtime: str) -> dict:
    """Wall time of testing_caption_generator.py -i on one photo, and on all `paths` in one call, with
    $CAPTION_GENERATOR_RUNTIME=`runtime`."""
    script = [sys.executable, str(ROOT / "testing_caption_generator.py")]
    env = {**os.environ, "CAPTION_GENERATOR_RUNTIME": runtime}

    def call(photos: list[Path]) -> float:
        return wall_time(script + [a for p in photos for a in ("-i", str(p))] + model_args, env, len(photos))

    one = [call(paths[:1]) for _ in range(repeats)]
    many = call(paths)
    return {"one_photo_s": median(one), "many_photos": len(paths), "many_s": many,
            "many_per_photo_ms": 1000 * many / len(paths),
            "many_marginal_per_photo_ms": 1000 * (many - median(one)) / (len(paths) - 1), "one_runs_s": one}


def bench_tf_floor(photo: Path, weights: str, repeats: int) -> dict:
    """Wall time of the TensorFlow floor (TF_FLOOR): a process that imports Keras, builds Xception and runs
    one photo."""
    runs = [wall_time([sys.executable, "-c", TF_FLOOR, weights, str(photo)]) for _ in range(repeats)]
    return {"s": median(runs), "runs_s": runs}


def ratios(results: dict) -> list[tuple[str, float, str, bool]]:
    """(what, measured ratio, target, met) for each target of the issues."""
    f, t, c = results["features"], results["training"], results["captioning"]
    e, o, floor = results["end_to_end"]["keras"], results["end_to_end"]["onnx"], results["tf_floor"]["s"]
    bare_ms = 1000 / f["bare_img_s"]
    rows = [
        ("extraction: ours / bare forward", f["ours_img_s"] / f["bare_img_s"], ">= 0.95"),
        ("extraction on ONNX Runtime: ours / bare ONNX forward", f["ours_onnx_img_s"] / f["bare_onnx_img_s"],
         ">= 0.95"),
        ("extraction: ours / baseline", f["ours_img_s"] / f["baseline_img_s"], ">= 3"),
        ("extraction: ours with --bfloat16 / baseline", f["ours_bfloat16_img_s"] / f["baseline_img_s"], "(info)"),
        ("extraction: ours on ONNX Runtime / ours on Keras", f["ours_onnx_img_s"] / f["ours_img_s"], "(info)"),
        ("training epoch: baseline / ours", t["baseline_epoch_s"] / t["ours_epoch_s"], ">= 10"),
        ("training peak memory: baseline / ours", t["baseline_peak_rss_mb"] / t["ours_peak_rss_mb"], "> 1"),
        ("greedy: baseline / ours (batched)", c["baseline_greedy_ms"] / c["ours_greedy_ms"], ">= 10"),
        ("greedy: baseline / ours (one photo per call)", c["baseline_greedy_ms"] / c["ours_greedy_one_by_one_ms"],
         "(info)"),
        ("beam 3 / greedy (ours, batched)", c["ours_beam3_ms"] / c["ours_greedy_ms"], "<= 2"),
        ("beam 3 on ONNX Runtime / on Keras (batched)", c["ours_onnx_beam3_ms"] / c["ours_beam3_ms"], "(info)"),
        (f"{e['many_photos']} photos in one call, per photo / bare forward", e["many_per_photo_ms"] / bare_ms,
         "<= 1.2"),
        ("  the same without start-up (marginal per photo)", e["many_marginal_per_photo_ms"] / bare_ms, "(info)"),
        ("cold, 1 photo, whole process on ONNX Runtime / TensorFlow floor", o["one_photo_s"] / floor, "<= 0.25"),
        ("  the same on Keras / TensorFlow floor", e["one_photo_s"] / floor, "(info)"),
        (f"{o['many_photos'] - 1} more photos in the same call on ONNX Runtime, per photo / bare forward",
         o["many_marginal_per_photo_ms"] / bare_ms, "<= 1.0"),
    ]
    if "memory" in t:
        m = t["memory"]
        rows.append((f"training peak memory at {m['captions']} captions: baseline / ours",
                     m["baseline_peak_rss_mb"] / m["ours_peak_rss_mb"], "> 1"))

    def met(value: float, target: str) -> bool | None:
        if target == "(info)":
            return None
        op, bound = target.split()
        return {">=": value >= float(bound), ">": value > float(bound), "<=": value <= float(bound)}[op]

    return [(what, value, target, met(value, target)) for what, value, target in rows]


def table(results: dict) -> str:
    """The results as a Markdown table (ours on Keras and on ONNX Runtime side by side) and the ratios
    against the targets."""
    f, t, c = results["features"], results["training"], results["captioning"]
    e, o, floor = results["end_to_end"]["keras"], results["end_to_end"]["onnx"], results["tf_floor"]["s"]
    scale = EPOCH_CAPTIONS / t["captions"]
    rows = [
        ("Feature extraction, images/s (JPEG files, batch 8)", f"{f['ours_img_s']:.2f}", f"{f['ours_onnx_img_s']:.2f}",
         f"{f['baseline_img_s']:.2f}", f"bare forward on ready tensors: {f['bare_img_s']:.2f} (Keras), "
         f"{f['bare_onnx_img_s']:.2f} (ONNX Runtime); features within {f['onnx_vs_keras_max_abs_difference']:.1e}"),
        ("Feature extraction with --bfloat16, images/s", f"{f['ours_bfloat16_img_s']:.2f}", "", "",
         f"cosine to float32 features >= {f['cosine_bfloat16_vs_float32_min']:.4f}"),
        (f"Training, s per epoch of {t['captions']} captions", f"{t['ours_epoch_s']:.1f}", "",
         f"{t['baseline_epoch_s']:.1f}", f"vocabulary {t['vocabulary']} words, 256 units"),
        (f"Training, s per {EPOCH_CAPTIONS}-caption epoch (scaled x{scale:g})", f"{t['ours_epoch_s'] * scale:.0f}", "",
         f"{t['baseline_epoch_s'] * scale:.0f}", "the whole Flickr8k train split"),
        (f"Training, peak memory MB ({t['captions']} captions)", f"{t['ours_peak_rss_mb']:.0f}", "",
         f"{t['baseline_peak_rss_mb']:.0f}", "ru_maxrss of a process of its own"),
    ]
    if "memory" in t:
        m = t["memory"]
        rows.append((f"Training, peak memory MB ({m['captions']} captions)", f"{m['ours_peak_rss_mb']:.0f}", "",
                     f"{m['baseline_peak_rss_mb']:.0f}", "all the train split's captions loaded"))
    rows += [
        ("Captioning greedy, ms/photo (features known)", f"{c['ours_greedy_ms']:.1f}",
         f"{c['ours_onnx_greedy_ms']:.1f}", f"{c['baseline_greedy_ms']:.1f}",
         f"{c['photos']} photos in one batch; {c['same_greedy_captions']}/{c['photos']} captions identical to the "
         f"baseline's, {c['same_greedy_captions_onnx']}/{c['photos']} on ONNX Runtime to Keras's"),
        ("Captioning greedy one photo per call, ms/photo", f"{c['ours_greedy_one_by_one_ms']:.1f}",
         f"{c['ours_onnx_greedy_one_by_one_ms']:.1f}", "", ""),
        ("Captioning beam 3, ms/photo", f"{c['ours_beam3_ms']:.1f}", f"{c['ours_onnx_beam3_ms']:.1f}", "", ""),
        ("testing_caption_generator.py -i, 1 photo, s (whole process)", f"{e['one_photo_s']:.2f}",
         f"{o['one_photo_s']:.2f}", "", f"TensorFlow floor (import Keras, build Xception, run 1 photo): {floor:.2f}"),
        (f"testing_caption_generator.py, {e['many_photos']} photos in one call, ms/photo",
         f"{e['many_per_photo_ms']:.0f}", f"{o['many_per_photo_ms']:.0f}", "",
         f"marginal {e['many_marginal_per_photo_ms']:.0f} (Keras), {o['many_marginal_per_photo_ms']:.0f} (ONNX "
         f"Runtime) ms/photo; bare Keras forward {1000 / f['bare_img_s']:.0f}"),
    ]
    lines = ["| measure | ours (Keras) | ours (ONNX Runtime) | baseline | note |", "| --- | ---: | ---: | ---: | --- |"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += ["", "| ratio | measured | target | met |", "| --- | ---: | --- | --- |"]
    lines += [f"| {what} | {value:.2f} | {target} | {'' if ok is None else 'yes' if ok else 'NO'} |"
              for what, value, target, ok in ratios(results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small smoke-test size (about 3 minutes)")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT,
                        help="Flickr8k folder (default: ../shared/flickr8k)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--encoder-weights", default=None,
                        help="Xception ImageNet weights file (default: $XCEPTION_WEIGHTS, else Keras's download)")
    parser.add_argument("--worker", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--captions", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_worker(args.worker, args.data_root, args.captions, args.epochs)))
        return

    from caption_generator.features import build_encoder, encoder_weights
    from caption_generator.pipeline import open_encoder

    size = SIZES["quick" if args.quick else "full"]
    weights = encoder_weights(args.encoder_weights)  # fail at once without weights
    if weights is None:
        parser.error("random encoder weights run on Keras only: give the ImageNet weights (ONNX Runtime's rows)")
    weight_args = [] if weights == "imagenet" else ["--encoder-weights", weights]
    started = time.perf_counter()
    test_photos = split_photos(args.data_root, "test")
    results: dict = {"size": "quick" if args.quick else "full", "settings": size,
                     "machine": {"cpus": os.cpu_count(), "processor": _processor()}}

    print("training (each side in a process of its own) ...", file=sys.stderr)
    training = {k: run_worker(k, args.data_root, size["captions"], size["epochs"]) for k in ("ours", "baseline")}
    results["training"] = {"captions": training["ours"]["captions"], "vocabulary": training["ours"]["vocabulary"],
                           **{f"{k}_epoch_s": median(v["epoch_s"]) for k, v in training.items()},
                           **{f"{k}_peak_rss_mb": v["peak_rss_mb"] for k, v in training.items()}, "runs": training}
    if size["memory_captions"]:
        memory = {k: run_worker(k, args.data_root, size["memory_captions"], 0) for k in ("ours", "baseline")}
        results["training"]["memory"] = {"captions": memory["ours"]["captions"],
                                         **{f"{k}_peak_rss_mb": v["peak_rss_mb"] for k, v in memory.items()}}

    print("feature extraction (the encoder exported to ONNX first if it is not in the cache) ...", file=sys.stderr)
    encoder, encoder_bf16 = build_encoder(weights), build_encoder(weights, bfloat16=True)
    onnx_encoder = open_encoder(weights, encoder.input_shape[1], runtime="onnx")
    results["features"], features = bench_features(test_photos[:size["photos"]], encoder, encoder_bf16, onnx_encoder,
                                                   size["repeats"])

    with tempfile.TemporaryDirectory() as folder:
        print("captioning ...", file=sys.stderr)
        captioner, onnx_captioner, model_args, which = caption_model(args.data_root, Path(folder))
        results["caption_model"] = which
        results["captioning"] = bench_captioning(captioner, onnx_captioner, features[:size["caption_photos"]],
                                                 size["repeats"])
        print("end to end, and the TensorFlow floor ...", file=sys.stderr)
        onnx = "auto" if model_args else "onnx"  # ONNX decoders ship with the shipped model only
        results["end_to_end"] = {kind: bench_end_to_end(test_photos[:size["e2e_photos"]], model_args + weight_args,
                                                        size["repeats"], runtime)
                                 for kind, runtime in (("keras", "keras"), ("onnx", onnx))}
        results["tf_floor"] = bench_tf_floor(test_photos[0], weights, size["repeats"])
    results["ratios"] = [{"what": w, "measured": v, "target": t, "met": m} for w, v, t, m in ratios(results)]
    results["seconds"] = time.perf_counter() - started

    print(f"\n{results['size']} run, {results['machine']['cpus']} CPUs ({results['machine']['processor']}); "
          f"caption model: {which}\n")
    print(table(results))
    print("\n" + json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def _processor() -> str:
    """The CPU's model name (Linux), or the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
