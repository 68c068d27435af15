import json

import numpy as np
import pytest

from caption_generator.caption import Captioner
from caption_generator.config import ScstConfig
from caption_generator.model import load_model
from caption_generator.scst import advantages, fine_tune, sequence_log_probs
from caption_generator.vocabulary import Vocabulary


def test_training_log_probs_are_the_sampling_distributions(short_run, random_features):
    """The teacher-forced pass SCST differentiates gives each sampled caption the log-probability the
    decoding steps gave it while sampling: one distribution, <unk> forbidden in both."""
    folder, splits = short_run
    model, vocab = load_model(folder / "run" / "best.keras"), Vocabulary.load(folder / "run" / "tokenizer.p")
    captioner = Captioner(model, vocab)
    features = np.stack([random_features[n] for n in list(splits["train"])[:3]])
    tokens = captioner.sample(features, 4, np.random.default_rng(0))
    expected = np.zeros(len(tokens))
    photos, states = captioner.initial(features, 4)
    previous = np.full(len(tokens), vocab.start_id, np.int32)
    for t in range(tokens.shape[1]):
        log_probs, states = captioner.step(photos, previous, states)
        expected += np.where(tokens[:, t] != 0, log_probs[np.arange(len(tokens)), tokens[:, t]], 0.0)
        previous = tokens[:, t]
    got = sequence_log_probs(model, np.repeat(features, 4, axis=0), tokens, vocab.start_id).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_each_samples_baseline_is_the_mean_of_the_photos_other_samples():
    rewards = np.array([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])
    np.testing.assert_allclose(advantages(rewards, 3), [-1.5, 0.0, 1.5, -3.0, -3.0, 6.0])


def test_sample_reward_rises(short_run, random_features, tmp_path):
    folder, splits = short_run
    config = ScstConfig(learning_rate=1e-3, epochs=15, photos_per_step=7)
    history = fine_tune(folder / "run", splits, random_features, tmp_path, config, progress=False)
    assert [h["epoch"] for h in history] == list(range(16))
    assert set(history[0]) == {"epoch", "dev_cider", "seconds"}  # the starting model
    rewards = [h["reward"] for h in history[1:]]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.05, rewards


def test_resume_continues_where_the_run_stopped(short_run, random_features, tmp_path):
    folder, splits = short_run
    config = ScstConfig(learning_rate=1e-3, epochs=3, photos_per_step=7)
    straight = fine_tune(folder / "run", splits, random_features, tmp_path / "straight", config, progress=False)
    config.epochs = 2
    first = fine_tune(folder / "run", splits, random_features, tmp_path / "stopped", config, progress=False)
    config.epochs = 3
    resumed = fine_tune(folder / "run", splits, random_features, tmp_path / "stopped", config, resume=True,
                        progress=False)
    assert resumed[:3] == first and [h["epoch"] for h in resumed] == [0, 1, 2, 3]
    assert resumed[3]["reward"] == pytest.approx(straight[3]["reward"])  # model, optimizer and shuffling restored
    assert json.loads((tmp_path / "stopped" / "history.json").read_text()) == resumed
