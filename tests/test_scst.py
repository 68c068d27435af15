import json

import numpy as np
import pytest

from caption_generator import data
from caption_generator.caption import Captioner
from caption_generator.config import ScstConfig
from caption_generator.files import save_pickle
from caption_generator.model import load_model
from caption_generator.scst import advantages, fine_tune, sequence_log_probs
from caption_generator.train import load_splits
from caption_generator.vocabulary import Vocabulary
from conftest import FLICKR


@pytest.fixture(scope="module")
def start(tmp_path_factory, random_features):
    """A tiny cross-entropy run trained briefly on the fixture's train photos: its folder, the splits,
    and the descriptions and features files."""
    import keras
    from caption_generator.model import build_model
    from caption_generator.train import caption_arrays, compile_model, make_dataset

    folder = tmp_path_factory.mktemp("scst")
    data.prepare(FLICKR, folder / "descriptions.txt")
    save_pickle(random_features, folder / "features.p")
    splits = load_splits(FLICKR, folder / "descriptions.txt")
    vocab = Vocabulary.build(c for texts in splits["train"].values() for c in texts)
    keras.utils.set_random_seed(0)
    model = build_model(len(vocab), units=32, embedding_dim=16, dropout=0.0)
    compile_model(model, learning_rate=1e-2)
    model.fit(make_dataset(*caption_arrays(splits["train"], vocab, random_features), batch_size=16, shuffle=False),
              epochs=60, verbose=0, shuffle=False)
    (folder / "run").mkdir()
    model.save(folder / "run" / "best.keras")
    vocab.save(folder / "run" / "tokenizer.p")
    return folder, splits


def test_training_log_probs_are_the_sampling_distributions(start, random_features):
    """The teacher-forced pass SCST differentiates gives each sampled caption the log-probability the
    decoding steps gave it while sampling: one distribution, <unk> forbidden in both."""
    folder, splits = start
    model, vocab = load_model(folder / "run" / "best.keras"), Vocabulary.load(folder / "run" / "tokenizer.p")
    captioner = Captioner(model, vocab)
    features = np.stack([random_features[n] for n in list(splits["train"])[:3]])
    tokens = captioner.sample(features, 4, np.random.default_rng(0))
    expected = np.zeros(len(tokens))
    photos, states = captioner._initial(features, 4)
    previous = np.full(len(tokens), vocab.start_id, np.int32)
    for t in range(tokens.shape[1]):
        log_probs, states = captioner._step(photos, previous, states)
        expected += np.where(tokens[:, t] != 0, log_probs.numpy()[np.arange(len(tokens)), tokens[:, t]], 0.0)
        previous = tokens[:, t]
    got = sequence_log_probs(model, np.repeat(features, 4, axis=0), tokens, vocab.start_id).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_each_samples_baseline_is_the_mean_of_the_photos_other_samples():
    rewards = np.array([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])
    np.testing.assert_allclose(advantages(rewards, 3), [-1.5, 0.0, 1.5, -3.0, -3.0, 6.0])


def test_sample_reward_rises(start, random_features, tmp_path):
    folder, splits = start
    config = ScstConfig(learning_rate=1e-3, epochs=15, photos_per_step=7)
    history = fine_tune(folder / "run", splits, random_features, tmp_path, config, progress=False)
    assert [h["epoch"] for h in history] == list(range(16))
    assert set(history[0]) == {"epoch", "dev_cider", "seconds"}  # the starting model
    rewards = [h["reward"] for h in history[1:]]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.05, rewards


def test_resume_continues_where_the_run_stopped(start, random_features, tmp_path):
    folder, splits = start
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


def test_command_writes_a_run_that_captions(start, tmp_path):
    from PIL import Image

    from caption_generator.__main__ import main
    from caption_generator.caption import load_captioner

    folder, _ = start
    out = tmp_path / "scst"
    args = ["train", "--scst", "--from", str(folder / "run"), "--out-dir", str(out), "--data-root", str(FLICKR),
            "--descriptions", str(folder / "descriptions.txt"), "--features", str(folder / "features.p")]
    assert main(args + ["--epochs", "1"]) == 0
    assert {"epoch_00.keras", "epoch_01.keras", "best.keras", "tokenizer.p", "history.json", "scst.json",
            "scst.png"} <= {p.name for p in out.iterdir()}
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1]
    with Image.open(out / "scst.png") as image:
        assert image.format == "PNG" and min(image.size) > 100
    captioner, _ = load_captioner([out / "best.keras"], out / "tokenizer.p")
    assert len(captioner.greedy(np.zeros((2, 2048), np.float32))) == 2
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1, 2]


@pytest.mark.parametrize("args, message", [
    (["--scst"], "needs both --scst and --from"),
    (["--from", "run"], "needs both --scst and --from"),
    (["--scst", "--from", "run", "--units", "8"], "--units does not apply to train --scst"),
])
def test_command_refuses_incomplete_or_foreign_options(args, message, capsys):
    from caption_generator.__main__ import main
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
