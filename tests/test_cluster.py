"""This worker's place in a $TF_CONFIG cluster."""
import json

import pytest

from caption_generator.cluster import cluster_position


@pytest.mark.parametrize("config, position", [
    (None, (0, 1)),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, (0, 1)),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, (1, 2)),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}, (0, 3)),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, (1, 3)),
])
def test_cluster_position(config, position, monkeypatch):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert cluster_position() == position
