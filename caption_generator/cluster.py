"""Training on a cluster: this worker's place in $TF_CONFIG, and the tf.distribute strategy to train under."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import tf


def cluster_position() -> tuple[int, int]:
    """(this worker's index, number of workers) from $TF_CONFIG, as tf.distribute reads it: the chief
    (if any) first, then the workers in order; (0, 1) without TF_CONFIG. Index 0 is the chief."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1:
        return 0, 1
    index = int(task.get("index", 0)) + (chiefs if task.get("type") == "worker" else 0)
    return index, chiefs + workers


@lru_cache(maxsize=1)
def distribution_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when $TF_CONFIG names several workers, MirroredStrategy over several GPUs
    (or several logical CPUs, if configured), else the default strategy. Made once per process: under
    TF_CONFIG, call it before any other TensorFlow work, as multi-worker collectives require."""
    from .backend import tf

    if cluster_position()[1] > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    for kind in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(kind)
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()
