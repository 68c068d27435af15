"""Captioning on ONNX Runtime (issue 13): the exported encoder and decoders give the Keras path's captions, a
damaged or foreign ONNX file is refused clearly or exported again, and the captioner runs where only the
inference requirements are installed (no TensorFlow)."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caption_generator import CaptionError, CaptionPipeline, load_captioner
from caption_generator.onnx_runtime import DECODER_FILES, DECODER_START, DECODER_STEP, OnnxCaptioner, OnnxEncoder
from caption_generator.shipped import MODELS_DIR
from caption_generator.vocabulary import Vocabulary
from conftest import PHOTOS, ROOT

WEIGHTS = os.environ.get("XCEPTION_WEIGHTS")
needs_weights = pytest.mark.skipif(not WEIGHTS, reason="needs the ImageNet weights ($XCEPTION_WEIGHTS)")
SENTENCE = re.compile(r"[a-z]+( [a-z]+){2,}")  # what a caption looks like: three words or more
SHIPPED_VOCAB = MODELS_DIR / "tokenizer.p"


@pytest.fixture(scope="session")
def exported_encoder() -> Path:
    """The ImageNet encoder exported into the tests' cache ($CAPTION_GENERATOR_CACHE) by the export command."""
    done = subprocess.run([sys.executable, "-m", "caption_generator", "export"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(done.stdout.strip().rsplit("on ONNX Runtime: ", 1)[1])
    assert path.parent == Path(os.environ["CAPTION_GENERATOR_CACHE"]) and path.is_file()
    return path


@needs_weights
def test_the_onnx_runtime_writes_the_keras_captions_of_the_fixture(exported_encoder):
    on_onnx, on_keras = CaptionPipeline(runtime="onnx"), CaptionPipeline(runtime="keras")
    assert isinstance(on_onnx.encoder, OnnxEncoder) and isinstance(on_onnx.captioner, OnnxCaptioner)
    for beam in (5, 1):
        onnx, keras = list(on_onnx(PHOTOS, beam=beam)), list(on_keras(PHOTOS, beam=beam))
        assert [r.caption for r in onnx] == [r.caption for r in keras]
        assert all(SENTENCE.fullmatch(r.caption) for r in onnx), [r.caption for r in onnx]
        np.testing.assert_allclose(np.stack([r.features for r in onnx]), np.stack([r.features for r in keras]),
                                   atol=1e-4)
        np.testing.assert_allclose([r.assessment.confidence for r in onnx], [r.assessment.confidence for r in keras],
                                   atol=1e-4)


def assert_same_steps(first, second, features: np.ndarray, steps: int = 3) -> None:
    """Two captioners give the same photo vectors, next-word distributions and LSTM states of each model, step
    after step (each feeding the most likely words)."""
    (photos, states), (their_photos, their_states) = first.initial(features, 2), second.initial(features, 2)
    np.testing.assert_allclose(np.concatenate(photos, 1), np.concatenate(their_photos, 1), atol=1e-5)
    tokens = np.full(len(features) * 2, first.vocab.start_id, np.int32)
    for _ in range(steps):
        log_probs, states = first.step(photos, tokens, states)
        their_log_probs, their_states = second.step(their_photos, tokens, their_states)
        np.testing.assert_allclose(np.exp(log_probs), np.exp(their_log_probs), atol=1e-5)
        for state, their_state in zip(states, their_states, strict=True):  # each model's (h, c), in order
            np.testing.assert_allclose(np.concatenate(state), np.concatenate(their_state), atol=1e-5)
        tokens = their_log_probs.argmax(axis=1).astype(np.int32)


def test_exported_decoders_step_as_the_keras_ensemble_and_search_alike(overfit, random_features, tmp_path):
    import keras

    from caption_generator.caption import Captioner
    from caption_generator.export import export_decoders
    from caption_generator.model import build_model

    model, vocab, firsts, _ = overfit
    keras.utils.set_random_seed(3)
    ensemble = [model, build_model(len(vocab), units=16, embedding_dim=8, tie_embeddings=True)]  # two sizes, tied
    start, step = tmp_path / DECODER_FILES[DECODER_START], tmp_path / DECODER_FILES[DECODER_STEP]
    assert export_decoders(ensemble, tmp_path) == [start.name, step.name]
    features = np.stack([random_features[n] for n in firsts])
    assert_same_steps(OnnxCaptioner(start, step, vocab), Captioner(ensemble, vocab), features)
    export_decoders([model], tmp_path)
    for beam in (1, 3):
        assert OnnxCaptioner(start, step, vocab).beam_search(features, beam) == \
            Captioner(model, vocab).beam_search(features, beam)


def test_the_shipped_decoders_are_the_shipped_models(random_features):
    on_onnx, on_keras = load_captioner(runtime="onnx")[0], load_captioner(runtime="keras")[0]
    assert isinstance(on_onnx, OnnxCaptioner) and on_onnx.units == on_keras.units
    assert_same_steps(on_onnx, on_keras, np.stack(list(random_features.values())[:4]))


def test_a_damaged_or_foreign_onnx_file_is_refused_with_one_clear_error(tmp_path):
    vocab = Vocabulary.load(SHIPPED_VOCAB)
    start, step = MODELS_DIR / DECODER_FILES[DECODER_START], MODELS_DIR / DECODER_FILES[DECODER_STEP]
    (tmp_path / "cut.onnx").write_bytes(step.read_bytes()[:100_000])
    with pytest.raises(CaptionError, match="cut.onnx: not a readable ONNX model"):
        OnnxCaptioner(start, tmp_path / "cut.onnx", vocab)
    with pytest.raises(CaptionError, match="not the exported decoder_step expected .kind 'decoder_start'"):
        OnnxCaptioner(start, start, vocab)
    with pytest.raises(CaptionError, match="not the exported encoder expected"):
        OnnxEncoder(start, "imagenet", 299)
    with pytest.raises(CaptionError, match="vocabulary '2534' where '5' was expected"):
        OnnxCaptioner(start, step, Vocabulary.build(["a"]))


@needs_weights
def test_a_damaged_encoder_in_the_cache_is_exported_again(exported_encoder, tmp_path, monkeypatch, caplog):
    from caption_generator import export, pipeline

    monkeypatch.setenv("CAPTION_GENERATOR_CACHE", str(tmp_path))
    damaged = tmp_path / exported_encoder.name
    damaged.write_bytes(exported_encoder.read_bytes()[:1_000_000])  # as a killed copy would leave it

    def export_encoder(weights: str, input_size: int) -> Path:  # the real export takes half a minute
        shutil.copyfile(exported_encoder, damaged)
        return damaged

    monkeypatch.setattr(export, "export_encoder", export_encoder)
    with caplog.at_level(logging.WARNING):
        encoder = pipeline.open_encoder(WEIGHTS, 299)
    assert isinstance(encoder, OnnxEncoder) and encoder.path == damaged
    assert "not a readable ONNX model" in caplog.text and "exporting it again" in caplog.text


@pytest.fixture(scope="session")
def inference_python(tmp_path_factory) -> Path:
    """The Python of a virtual environment with only requirements-inference.txt installed (CI's pins)."""
    folder = tmp_path_factory.mktemp("inference_venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    done = subprocess.run([folder / "bin" / "pip", "install", "-q", "-c", ROOT / "constraints.txt",
                           "-r", ROOT / "requirements-inference.txt"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "bin" / "python"


@pytest.mark.slow
@needs_weights
def test_the_script_captions_the_examples_where_tensorflow_is_not_installed(inference_python, exported_encoder,
                                                                           tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    missing = subprocess.run([inference_python, "-c", "import tensorflow"], capture_output=True, text=True, env=env)
    assert "No module named 'tensorflow'" in missing.stderr
    script = [str(ROOT / "testing_caption_generator.py"), "-i", str(ROOT / "examples")]

    def run(python, *args: str, **changes: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, *script, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env={**env, **changes})

    served = run(inference_python)
    assert served.returncode == 0 and not served.stderr.strip(), served.stderr[-3000:]
    lines = served.stdout.splitlines()
    assert [Path(line.split("\t")[0]).name for line in lines] == sorted(p.name for p in (ROOT / "examples").iterdir())
    assert all(SENTENCE.fullmatch(line.split("\t")[1]) for line in lines), lines
    assert lines == run(sys.executable, "--runtime", "keras").stdout.splitlines()

    similar = run(inference_python, "--similar", "2", "--data-root", str(ROOT / "tests" / "data" / "flickr8k"),
                  "--index", str(tmp_path / "index.p"))
    assert similar.returncode == 2 and similar.stderr.strip().splitlines() == [
        "error: this needs the Python package scikit-learn, which is not installed: pip install scikit-learn "
        "(pip install -r requirements.txt installs all that every command needs)"]

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / exported_encoder.name).write_bytes(exported_encoder.read_bytes()[:1_000_000])
    damaged = run(inference_python, CAPTION_GENERATOR_CACHE=str(tmp_path / "cache"))
    errors = damaged.stderr.strip().splitlines()
    assert damaged.returncode == 2 and len(errors) == 1 and "Traceback" not in damaged.stderr, damaged.stderr
    assert errors[0].startswith("error: ") and "not a readable ONNX model" in errors[0]
    assert "export it again" in errors[0]
