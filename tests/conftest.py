"""Shared fixtures: the small real Flickr8k fixture in tests/data and tiny models trained on it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
FLICKR = DATA / "flickr8k"
TINY_INPUT = 71  # Xception's smallest input: fast, for tests where the weights don't matter
HAS_DOT = shutil.which("dot") is not None  # Graphviz, for model.png
NO_DOT = "Graphviz's dot is not on PATH: model.png is not drawn (install Graphviz to check it)"


@pytest.fixture(scope="session")
def descriptions():
    from caption_generator import data
    return data.clean_descriptions(data.read_captions(data.captions_path(FLICKR)))


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


@pytest.fixture()
def flickr_copy(tmp_path):
    """A writable copy of the fixture data root."""
    return Path(shutil.copytree(FLICKR, tmp_path / "flickr8k"))
