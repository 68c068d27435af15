"""Self-critical sequence training (Rennie et al. 2017): fine-tune a cross-entropy run on the CIDEr-D
of captions sampled from the model itself.

Each step samples `samples` captions per photo from the decoding distribution (the Captioner's compiled
step), rewards each with its CIDEr-D against the photo's train references, and takes as its baseline the
mean reward of the photo's other samples (Luo 2020). The loss, -(reward - baseline) x the sample's
log-probability, is computed by one teacher-forced pass of the whole model (training=False, so no dropout:
the distribution it differentiates is exactly the one sampled from).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .backend import keras, tf

from .caption import Captioner, next_word_log_probs
from .cider import CiderD
from .config import ScstConfig
from .errors import CaptionError
from .files import write_text
from .model import load_model
from .show import plot_history
from .train import Checkpoints, compile_model, resume_run
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)


def sequence_log_probs(model: keras.Model, features: tf.Tensor, tokens: tf.Tensor, start_id: int) -> tf.Tensor:
    """Each caption's log-probability under the decoding distribution: its words and end token (the
    nonzero `tokens`, one caption per row) given the photo and the words before them."""
    features, tokens = tf.convert_to_tensor(features, tf.float32), tf.convert_to_tensor(tokens, tf.int32)
    words = tf.concat([tf.fill([tf.shape(tokens)[0], 1], start_id), tokens[:, :-1]], axis=1)
    probs = model({"features": features, "words": words}, training=False)
    log_probs = tf.gather(next_word_log_probs(probs), tokens, batch_dims=2)
    return tf.reduce_sum(tf.where(tokens != 0, log_probs, 0.0), axis=1)


def advantages(rewards: np.ndarray, samples: int) -> np.ndarray:
    """Each sample's reward minus the mean reward of the same photo's other samples (rows photo by photo)."""
    per_photo = rewards.reshape(-1, samples)
    baseline = (per_photo.sum(axis=1, keepdims=True) - per_photo) / (samples - 1)
    return (per_photo - baseline).ravel()


class SelfCritical:
    """SCST updates of a compiled model, and the CIDEr-D of its greedy captions."""

    def __init__(self, model: keras.Model, vocab: Vocabulary, cider: CiderD, samples: int):
        self.model, self.vocab, self.cider, self.samples = model, vocab, cider, samples
        self.captioner = Captioner(model, vocab)  # refuses a model and vocabulary that don't belong together
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        features = int(model.inputs[0].shape[-1])
        self._update = tf.function(self._update_fn, input_signature=[
            tf.TensorSpec((None, features), tf.float32), tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None,), tf.float32)])

    def _update_fn(self, features: tf.Tensor, tokens: tf.Tensor, advantage: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            log_probs = sequence_log_probs(self.model, features, tokens, self.vocab.start_id)
            loss = -tf.reduce_mean(advantage * log_probs)  # per sample, so it reads the same at any step size
        self.model.optimizer.apply(tape.gradient(loss, self.model.trainable_variables), self.model.trainable_variables)
        return loss

    def step(self, features: np.ndarray, references: list[list[str]], rng: np.random.Generator
             ) -> tuple[float, np.ndarray]:
        """One update on a batch of photos (their features and reference captions): the loss and the
        samples' rewards."""
        tokens = self.captioner.sample(features, self.samples, rng)
        rewards = self.cider.score([self.vocab.decode(t) for t in tokens],
                                   [r for r in references for _ in range(self.samples)])
        loss = self._update(np.repeat(features, self.samples, axis=0).astype(np.float32), tokens,
                            advantages(rewards, self.samples).astype(np.float32))
        return float(loss), rewards

    def greedy_cider(self, features: np.ndarray, references: list[list[str]]) -> float:
        """Mean CIDEr-D of the greedy captions of the photos."""
        return float(self.cider.score(self.captioner.caption_features(features), references).mean())


def fine_tune(from_dir: str | os.PathLike, splits: dict[str, dict[str, list[str]]], features: dict[str, np.ndarray],
              out_dir: str | os.PathLike, config: ScstConfig, resume: bool = False, progress: bool = True
              ) -> list[dict]:
    """SCST of the run in `from_dir` (its best.keras and tokenizer.p) on the train split, the photos shuffled
    every epoch. Epoch 0 is the starting model. After every epoch the dev photos' greedy captions are scored
    with CIDEr-D; `out_dir` gets epoch_NN.keras, best.keras (by dev CIDEr-D), tokenizer.p, history.json,
    scst.json and scst.png. With `resume`, continue from `out_dir`'s last checkpoint. Returns the history."""
    from tqdm.auto import tqdm

    from_dir, out_dir = Path(from_dir), Path(out_dir)
    train, dev = splits["train"], splits["dev"]
    missing = [n for n in [*train, *dev] if n not in features]
    if missing:
        raise CaptionError(f"the features lack {len(missing)} of the photos needed (e.g. {missing[0]})")
    if config.samples < 2:
        raise CaptionError("SCST needs at least 2 samples per photo: each one's baseline is the others' reward")
    if out_dir.resolve() == from_dir.resolve():
        raise CaptionError(f"{out_dir}: give the self-critical run a folder of its own, not the run it starts from")
    if resume:
        model, history, done = resume_run(out_dir)
        vocab = Vocabulary.load(out_dir / "tokenizer.p")
    else:
        model, vocab = load_model(from_dir / "best.keras"), Vocabulary.load(from_dir / "tokenizer.p")
        compile_model(model, config.learning_rate)
        history, done = [], None
    trainer = SelfCritical(model, vocab, CiderD(train.values()), config.samples)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(out_dir / "tokenizer.p")
    write_text(out_dir / "scst.json", json.dumps({"from": str(from_dir), **asdict(config)}, indent=1))
    checkpoints = Checkpoints(out_dir, history, None, monitor="dev_cider", maximize=True)
    checkpoints.set_model(model)
    dev_features, dev_references = np.stack([features[n] for n in dev]), list(dev.values())
    if done is None:  # a new run: epoch 0 is the starting model
        started = time.perf_counter()
        score = trainer.greedy_cider(dev_features, dev_references)
        checkpoints.on_epoch_end(-1, {"dev_cider": score, "seconds": time.perf_counter() - started})  # Keras: 0-based
        log.info("epoch 0 (the starting model): dev CIDEr-D %.3f", score)
        done = 0
    names = list(train)
    for epoch in range(done + 1, config.epochs + 1):
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(names))
        batches = [order[i:i + config.photos_per_step] for i in range(0, len(order), config.photos_per_step)]
        losses, rewards = [], np.zeros(0)
        with tqdm(batches, desc=f"scst epoch {epoch}", unit="step", disable=not progress) as bar:
            for batch in bar:
                loss, step_rewards = trainer.step(np.stack([features[names[i]] for i in batch]),
                                                  [train[names[i]] for i in batch], rng)
                losses.append(loss)
                rewards = np.concatenate([rewards, step_rewards])
                bar.set_postfix(reward=f"{rewards.mean():.3f}")
        logs = {"loss": np.mean(losses), "reward": rewards.mean(),
                "dev_cider": trainer.greedy_cider(dev_features, dev_references)}
        checkpoints.on_epoch_end(epoch - 1, logs | {"seconds": time.perf_counter() - started})
        log.info("epoch %d/%d: loss %.4f, mean sample reward %.3f, dev CIDEr-D %.3f (%.0f s)", epoch, config.epochs,
                 logs["loss"], logs["reward"], logs["dev_cider"], history[-1]["seconds"])
    plot_history(history, out_dir / "scst.png", {"mean sample reward (train)": "reward",
                                                 "dev, greedy captions": "dev_cider"}, "CIDEr-D")
    return history
