import json

import numpy as np
import pytest

from caption_generator import data
from caption_generator.config import TrainConfig
from caption_generator.errors import CaptionError
from caption_generator.files import write_text
from caption_generator.layouts import open_layout
from caption_generator.model import build_model
from caption_generator.train import (LENGTH_BUCKETS, caption_arrays, compile_model, fit, learning_rate_schedule,
                                     make_dataset, train_model)
from caption_generator.vocabulary import Vocabulary
from conftest import FLICKR


def test_caption_arrays_targets_are_the_next_words(descriptions, random_features):
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    photos, rows, inputs, targets = caption_arrays(descriptions, vocab, random_features)
    assert photos.shape == (23, 2048) and rows.shape == (115,)
    assert inputs.shape == targets.shape == (115, vocab.max_length - 1)
    first = next(iter(descriptions))
    ids = vocab.encode(descriptions[first][0])
    n = len(ids) - 1
    assert inputs[0, :n].tolist() == ids[:-1] and targets[0, :n].tolist() == ids[1:]
    assert not inputs[0, n:].any() and not targets[0, n:].any()
    assert np.array_equal(inputs[0, 1:n], targets[0, :n - 1])  # each target is the next input word
    assert np.array_equal(photos[rows[0]], random_features[first]) and rows[4] == rows[0]


def test_dataset_batches_shapes_masks_and_length_buckets(descriptions, random_features):
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    photos, rows, inputs, targets = caption_arrays(descriptions, vocab, random_features)
    expected = sorted((float(photos[r][0]), tuple(i[i != 0])) for r, i in zip(rows, inputs))
    seen = []
    for batch, next_words in make_dataset(photos, rows, inputs, targets, batch_size=16):
        words, next_words = batch["words"].numpy(), next_words.numpy()
        assert batch["features"].shape == (len(words), 2048) and words.shape == next_words.shape
        assert np.array_equal(words != 0, next_words != 0)  # same mask on both sides
        assert next_words[:, -1].any()  # cut to the batch's longest caption, no all-padding column
        lengths = (next_words != 0).sum(axis=1)
        assert len({np.searchsorted(LENGTH_BUCKETS, n, side="right") for n in lengths}) == 1  # one length bucket
        seen += [(float(f[0]), tuple(w[w != 0])) for f, w in zip(batch["features"].numpy(), words)]
    assert sorted(seen) == expected  # every caption once, with its own photo's features


def test_missing_features_stop_before_any_work(descriptions, random_features):
    vocab = Vocabulary.build(["a dog"])
    partial = dict(list(random_features.items())[:-2])
    with pytest.raises(CaptionError, match="lack 2 of the 23 photos"):
        caption_arrays(descriptions, vocab, partial)


def test_model_overfits_the_fixture_captions(overfit, random_features):
    from caption_generator.caption import Captioner
    model, vocab, firsts, losses = overfit
    assert losses[-1] < 0.2 * losses[0]
    names = list(firsts)
    captions = Captioner(model, vocab).greedy(np.stack([random_features[n] for n in names]))
    right = sum(c == firsts[n][0] for n, c in zip(names, captions))
    assert right >= 0.9 * len(names), list(zip(captions, names))


@pytest.fixture()
def prepared(tmp_path, random_features):
    layout = open_layout(FLICKR)
    data.prepare(layout, tmp_path / "descriptions.txt")
    splits = data.load_splits(layout, tmp_path / "descriptions.txt")
    vocab = Vocabulary.build(c for texts in splits["train"].values() for c in texts)
    return splits, vocab, tmp_path / "run"


def tiny(vocab):
    return build_model(len(vocab), units=16, embedding_dim=8)


def test_training_run_checkpoints_history_and_resume(prepared, random_features):
    splits, vocab, run = prepared
    config = TrainConfig(epochs=2, batch_size=32)
    _, history = train_model(tiny(vocab), splits, vocab, random_features, run, config, verbose=0)
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"epoch_01.keras", "epoch_02.keras", "best.keras", "history.json", "loss.png", "config.json",
            "tokenizer.p"} <= {p.name for p in run.iterdir()}
    assert Vocabulary.load(run / "tokenizer.p") == vocab
    config.epochs = 3
    _, resumed = train_model(tiny(vocab), splits, vocab, random_features, run, config, resume=True, verbose=0)
    assert [h["epoch"] for h in resumed] == [1, 2, 3] and resumed[:2] == history
    assert json.loads((run / "history.json").read_text()) == resumed


def test_training_stops_early_when_dev_loss_stalls(prepared, random_features):
    splits, vocab, run = prepared
    config = TrainConfig(epochs=30, patience=1, learning_rate=0.05, batch_size=8)
    _, history = train_model(tiny(vocab), splits, vocab, random_features, run, config, verbose=0)
    assert len(history) < 30
    losses = [h["val_loss"] for h in history]
    assert losses[-1] >= min(losses[:-1])


def test_training_without_features_for_a_photo_fails_first(prepared, random_features):
    splits, vocab, run = prepared
    lacking = {k: v for k, v in random_features.items() if k != next(iter(splits["dev"]))}
    with pytest.raises(CaptionError, match="lack 1 of"):
        train_model(tiny(vocab), splits, vocab, lacking, run, TrainConfig(epochs=1), verbose=0)
    assert not run.exists()


def test_resume_after_a_kill_between_checkpoint_and_history(tmp_path, descriptions, random_features):
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    batches = make_dataset(*caption_arrays(descriptions, vocab, random_features), batch_size=64)

    def model(size: int = len(vocab)):
        m = build_model(size, units=8, embedding_dim=8)
        compile_model(m)
        return m

    _, history = fit(model(), batches, batches, tmp_path, epochs=2, verbose=0)
    write_text(tmp_path / "history.json", json.dumps(history[:1]))  # killed after epoch_02.keras, before history
    _, resumed = fit(model(), batches, batches, tmp_path, epochs=3, resume=True, verbose=0)
    assert [h["epoch"] for h in resumed] == [1, 2, 3] and resumed[0] == history[0]
    with pytest.raises(CaptionError, match="resume with the same data"):
        fit(model(len(vocab) + 1), batches, batches, tmp_path, epochs=4, resume=True, verbose=0)
    (tmp_path / "history.json").unlink()
    with pytest.raises(CaptionError, match="no checkpoint to resume from"):
        fit(model(), batches, batches, tmp_path, epochs=4, resume=True, verbose=0)


def test_cosine_schedule_sets_each_epochs_rate_and_a_resumed_run_goes_on_along_it(tmp_path, descriptions,
                                                                                    random_features):
    vocab = Vocabulary.build(c for texts in descriptions.values() for c in texts)
    batches = make_dataset(*caption_arrays(descriptions, vocab, random_features), batch_size=64)
    model = build_model(len(vocab), units=8, embedding_dim=8)
    compile_model(model, learning_rate=0.01)
    cosine = learning_rate_schedule("cosine", 0.01, epochs=4)
    fit(model, batches, batches, tmp_path, epochs=2, patience=None, verbose=0, schedule=cosine)
    _, history = fit(model, batches, batches, tmp_path, epochs=4, patience=None, resume=True, verbose=0,
                     schedule=cosine)
    assert [round(h["learning_rate"], 5) for h in history] == [0.01, 0.00854, 0.005, 0.00146]
    with pytest.raises(CaptionError, match="'step' is not one of plateau, cosine"):
        TrainConfig(lr_schedule="step")
