"""Training under tf.distribute for real: two worker processes over 127.0.0.1 with TF_CONFIG, and
MirroredStrategy over two logical CPUs, each matching one worker trained with the same global batch.
Feature extraction split between workers and merged gives the features of one run."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import FLICKR, ROOT

pytestmark = pytest.mark.slow

# Relative. Keras averages each replica's mean loss per real word, one device the whole batch's; the
# short batches (an epoch's or a length bucket's last) split unevenly (a replica may get none), so those steps
# differ most. Measured up to 4.4e-3; the losses move by 3e-2 from epoch 1 to epoch 2.
TOLERANCE = 1e-2
WORKER = """
import json, os, sys
import tensorflow as tf
if sys.argv[1] == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from caption_generator.cluster import distribution_strategy
strategy = distribution_strategy()  # first: multi-worker collectives are set up at start-up
import keras, numpy as np
from caption_generator import data, train
from caption_generator.config import TrainConfig
from caption_generator.layouts import open_layout
from caption_generator.model import build_model_from
from caption_generator.vocabulary import Vocabulary
layout = open_layout(sys.argv[2])
descriptions = data.clean_descriptions(layout.captions())
rng = np.random.default_rng(0)
features = {name: rng.normal(size=2048).astype(np.float32) for name in descriptions}
splits = {s: data.split_descriptions(descriptions, layout.split(s), s) for s in ("train", "dev")}
config = TrainConfig(min_count=1, units=16, embedding_dim=16, dropout=0.0, batch_size=8, epochs=2, patience=5)
vocab = Vocabulary.build((c for texts in splits["train"].values() for c in texts), config.min_count)
keras.utils.set_random_seed(0)
model = build_model_from(config, len(vocab))
_, history = train.train_model(model, splits, vocab, features, sys.argv[3], config, verbose=0)
kind = ("multi_worker" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else
        "mirrored" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default")
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "strategy": kind, "history": history}))
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(mode: str, out_dir, tf_config: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="-1")
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", WORKER, mode, str(FLICKR), str(out_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _losses(result: dict) -> np.ndarray:
    return np.array([[h["loss"], h["val_loss"]] for h in result["history"]])


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    result = _result(_start("single", tmp_path_factory.mktemp("single")))
    assert result["strategy"] == "default" and result["replicas"] == 1
    return result


def test_two_workers_over_localhost_match_one_worker(one_worker, tmp_path):
    start = time.time()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [_start("worker", tmp_path / f"run{i}", {"cluster": cluster, "task": {"type": "worker", "index": i}})
               for i in range(2)]
    chief, other = [_result(w) for w in workers]
    assert chief["strategy"] == "multi_worker" and chief["replicas"] == 2
    np.testing.assert_allclose(_losses(chief), _losses(one_worker), rtol=TOLERANCE)
    np.testing.assert_allclose(_losses(other), _losses(chief), rtol=1e-6)  # the workers agree
    assert (tmp_path / "run0" / "best.keras").is_file() and (tmp_path / "run0" / "history.json").is_file()
    assert not (tmp_path / "run1").exists()  # only the chief writes
    print(f"2 workers: {time.time() - start:.0f} s, losses {_losses(chief).tolist()} vs one worker "
          f"{_losses(one_worker).tolist()}, largest relative difference "
          f"{np.max(np.abs(_losses(chief) / _losses(one_worker) - 1)):.2e}")


def test_mirrored_over_two_logical_cpus_matches_one_device(one_worker, tmp_path):
    result = _result(_start("mirrored", tmp_path / "run"))
    assert result["strategy"] == "mirrored" and result["replicas"] == 2
    np.testing.assert_allclose(_losses(result), _losses(one_worker), rtol=TOLERANCE)
    assert (tmp_path / "run" / "best.keras").is_file()
    print(f"2 CPUs: largest relative loss difference {np.max(np.abs(_losses(result) / _losses(one_worker) - 1)):.2e}")


def test_feature_extraction_split_between_workers_merges_to_one_run(tiny_encoder, tmp_path):
    from caption_generator.features import extract_features, merge_features, part_path, shard
    from caption_generator.layouts import open_layout

    paths = open_layout(FLICKR).photos()
    whole = extract_features(paths, tiny_encoder, progress=False)
    out = tmp_path / "features.p"
    for index in range(2):
        extract_features(shard(paths, index, 2), tiny_encoder, out=part_path(out, index, 2), progress=False)
    merged = merge_features(out)
    assert merged.keys() == whole.keys() and all(np.allclose(merged[k], whole[k], atol=1e-5) for k in whole)
    assert out.is_file() and not list(tmp_path.glob("features.p.part-*"))
