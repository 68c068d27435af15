"""The merge model: model.png drawn by Graphviz's dot, or one line on how to install Graphviz."""
from __future__ import annotations

import logging

import pytest
from PIL import Image

from caption_generator.model import build_model, plot
from conftest import HAS_DOT, NO_DOT


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_plot_draws_the_model(tmp_path):
    assert plot(build_model(10, units=8, embedding_dim=8), tmp_path / "model.png")
    with Image.open(tmp_path / "model.png") as img:
        assert img.format == "PNG" and min(img.size) > 100
    assert [p.name for p in tmp_path.iterdir()] == ["model.png"]


def test_plot_without_dot_says_how_to_install_graphviz(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot
    with caplog.at_level(logging.WARNING):
        assert not plot(build_model(10, units=8, embedding_dim=8), tmp_path / "model.png")
    assert not list(tmp_path.iterdir())
    [message] = [r.getMessage() for r in caplog.records]
    assert "model.png not drawn" in message and "install Graphviz" in message and "\n" not in message
