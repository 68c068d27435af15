"""Training: whole captions per step (every prefix's next word at once), sparse targets, tf.data."""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .backend import keras, tf

from .cluster import cluster_position, distribution_strategy
from .config import TrainConfig
from .errors import CaptionError
from .files import atomic_path, write_text
from .model import vocab_size_of
from .show import plot_history
from .vocabulary import TOKENIZER_FILE, Vocabulary

log = logging.getLogger(__name__)


def caption_arrays(descriptions: dict[str, list[str]], vocab: Vocabulary, features: dict[str, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(photo features, photo row, input words, target words): one features row per photo and
    one row of the other three per caption.

    Inputs are <start> w1 .. wn, targets w1 .. wn <end>, both padded with 0 to max_length - 1.
    """
    missing = [name for name in descriptions if name not in features]
    if missing:
        raise CaptionError(f"the features lack {len(missing)} of the {len(descriptions)} photos needed "
                           f"(e.g. {missing[0]}); run the features step on this data root")
    names = list(descriptions)
    photo_rows, sequences = [], []
    for row, name in enumerate(names):
        for caption in descriptions[name]:
            photo_rows.append(row)
            sequences.append(vocab.encode(caption)[:vocab.max_length])
    length = vocab.max_length - 1
    inputs = np.zeros((len(sequences), length), np.int32)
    targets = np.zeros((len(sequences), length), np.int32)
    for i, ids in enumerate(sequences):
        inputs[i, :len(ids) - 1] = ids[:-1]
        targets[i, :len(ids) - 1] = ids[1:]
    photos = np.stack([features[n] for n in names]).astype(np.float32)
    return photos, np.array(photo_rows, np.int32), inputs, targets


LENGTH_BUCKETS = [9, 11, 13, 15, 18, 22]  # caption tokens; Flickr8k captions average 12 words


def make_dataset(photos: np.ndarray, photo_rows: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                 batch_size: int = 64, shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
    """Batches of ({"features", "words"}, next words) for model.fit, each cut to its longest caption
    (padding beyond it would cost time and change nothing). Shuffled batches gather captions of
    similar length (tf.data bucketing), so little padding is computed at all."""
    table = tf.constant(photos)

    def lookup_and_trim(rows, inputs, targets):
        length = tf.reduce_max(tf.reduce_sum(tf.cast(targets != 0, tf.int32), axis=1))
        return {"features": tf.gather(table, rows), "words": inputs[:, :length]}, targets[:, :length]

    dataset = tf.data.Dataset.from_tensor_slices((photo_rows, inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.bucket_by_sequence_length(
            lambda rows, inputs, targets: tf.reduce_sum(tf.cast(targets != 0, tf.int32)),
            LENGTH_BUCKETS, [batch_size] * (len(LENGTH_BUCKETS) + 1))
    else:
        dataset = dataset.batch(batch_size)
    options = tf.data.Options()  # several workers: each takes its replicas' part of every global batch
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.map(lookup_and_trim).prefetch(tf.data.AUTOTUNE).with_options(options)


def _fit_multi_worker(model: keras.Model, train_data: tf.data.Dataset, dev_data: tf.data.Dataset, epochs: int,
                      initial_epoch: int, callbacks: list[keras.callbacks.Callback], verbose: int | str) -> None:
    """model.fit's epochs under MultiWorkerMirroredStrategy, which Keras 3's fit does not support
    (keras-team/keras#20585): every worker runs the model's loss and optimizer on its part of each global
    batch with strategy.run; the callbacks get the losses over all workers, weighted by rows as fit does."""
    strategy = tf.distribute.get_strategy()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)

    def step(batch, train: bool):
        inputs, targets = batch
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=inputs, y=targets, y_pred=model(inputs, training=train), training=train)
        if train:
            model.optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        rows = tf.cast(tf.shape(targets)[0], loss.dtype)
        return loss * strategy.num_replicas_in_sync * rows, rows  # compute_loss divides by the replica count

    @tf.function(reduce_retracing=True)
    def run(batch, train: bool):
        return [strategy.reduce("SUM", t, axis=None) for t in strategy.run(step, args=(batch, train))]

    data = {"": (strategy.experimental_distribute_dataset(train_data), True),
            "val_": (strategy.experimental_distribute_dataset(dev_data), False)}
    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = {}
        for prefix, (batches, train) in data.items():
            totals = np.sum([[float(t) for t in run(batch, train)] for batch in batches], axis=0)
            logs[prefix + "loss"] = totals[0] / totals[1]
        callback_list.on_epoch_end(epoch, logs)
        if verbose:
            log.info("epoch %d/%d: loss %.4f, dev loss %.4f", epoch + 1, epochs, logs["loss"], logs["val_loss"])
        if model.stop_training:
            break
    callback_list.on_train_end()


@keras.saving.register_keras_serializable(package="caption_generator")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy of the next words (ids; 0 is padding) against predicted probabilities, averaged over
    the real words, with label smoothing: 1 - smoothing on the right word, smoothing spread evenly."""

    def __init__(self, smoothing: float = 0.0, name: str = "smoothed_cross_entropy", **kwargs):
        kwargs["reduction"] = "mean_with_sample_weight"
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def __call__(self, y_true, y_pred, sample_weight=None):
        words = keras.ops.cast(keras.ops.not_equal(y_true, 0), "float32")
        return super().__call__(y_true, y_pred, words if sample_weight is None else words * sample_weight)

    def call(self, y_true, y_pred):
        log_probs = keras.ops.log(keras.ops.clip(y_pred, 1e-7, 1.0))
        right = keras.ops.take_along_axis(log_probs, keras.ops.cast(y_true, "int32")[..., None], axis=-1)
        return -(1.0 - self.smoothing) * keras.ops.squeeze(right, -1) - self.smoothing * keras.ops.mean(log_probs, -1)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


def compile_model(model: keras.Model, learning_rate: float = TrainConfig.learning_rate,
                  label_smoothing: float = TrainConfig.label_smoothing) -> None:
    """Adam and cross-entropy over the real words (padding ignored), optionally label-smoothed."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0),
                  loss=SmoothedCrossEntropy(label_smoothing))


class Checkpoints(keras.callbacks.Callback):
    """Each epoch: save `epoch_NN.keras` and `history.json` (atomically), copy the best by `monitor` (lowest,
    or highest with `maximize`) to `best.keras`, and stop after `patience` epochs without improvement (if given)."""

    def __init__(self, out_dir: Path, history: list[dict], patience: int | None, monitor: str = "val_loss",
                 maximize: bool = False):
        super().__init__()
        self.out_dir, self.history, self.patience = out_dir, history, patience
        self.monitor, self.sign = monitor, -1 if maximize else 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append({"epoch": epoch + 1, **logs})
        path = self.out_dir / f"epoch_{epoch + 1:02d}.keras"
        with atomic_path(path) as tmp:
            self.model.save(tmp)
        values = [self.sign * h[self.monitor] for h in self.history]
        best = int(np.argmin(values))
        if best == len(values) - 1:
            with atomic_path(self.out_dir / "best.keras") as tmp:
                shutil.copyfile(path, tmp)
        write_text(self.out_dir / "history.json", json.dumps(self.history, indent=1))
        if self.patience is not None and len(values) - 1 - best >= self.patience:
            log.info("%s has not improved for %d epochs; stopping", self.monitor, self.patience)
            self.model.stop_training = True


def latest_checkpoint(out_dir: Path, epochs: set[int] | None = None) -> tuple[Path, int] | None:
    """The last epoch checkpoint in a run folder (only among `epochs` if given), and its epoch number."""
    found = [(int(m.group(1)), p) for p in out_dir.glob("epoch_*.keras")
             if (m := re.fullmatch(r"epoch_(\d+)\.keras", p.name)) and (epochs is None or int(m.group(1)) in epochs)]
    if not found:
        return None
    epoch, path = max(found)
    return path, epoch


def resume_run(out_dir: Path) -> tuple[keras.Model, list[dict], int]:
    """The run's last epoch checkpoint that history.json records (model and optimizer state), the history up
    to it and its epoch number; a kill between the two writes only costs that epoch."""
    try:
        history = json.loads((out_dir / "history.json").read_text())
    except (OSError, ValueError):
        history = []
    last = latest_checkpoint(out_dir, {h.get("epoch") for h in history})
    if last is None:
        raise CaptionError(f"{out_dir}: no checkpoint to resume from")
    path, epoch = last
    log.info("resuming from %s (epoch %d)", path, epoch)
    return keras.models.load_model(path), [h for h in history if h["epoch"] <= epoch], epoch


def learning_rate_schedule(schedule: str = TrainConfig.lr_schedule, learning_rate: float = TrainConfig.learning_rate,
                           epochs: int = TrainConfig.epochs) -> keras.callbacks.Callback:
    """The callback that sets the learning rate: "plateau" halves it after an epoch without progress on the
    dev loss; "cosine" sets epoch e (from 0) to learning_rate * (1 + cos(pi * e / epochs)) / 2."""
    if schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch, _: learning_rate * (1 + math.cos(math.pi * epoch / epochs)) / 2)
    return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-5)


def fit(model: keras.Model, train_data: tf.data.Dataset, dev_data: tf.data.Dataset, out_dir: str | os.PathLike,
        epochs: int = TrainConfig.epochs, patience: int = TrainConfig.patience, resume: bool = False,
        verbose: int | str = "auto", schedule: keras.callbacks.Callback | None = None
        ) -> tuple[keras.Model, list[dict]]:
    """Train with checkpoints in `out_dir`, the learning rate set by `schedule` (default: halved after an epoch
    without progress on the dev loss); return the best model by dev loss and the loss history.

    With `resume`, continue from the run's last epoch checkpoint that history.json records
    (model, optimizer and history); a kill between the two writes only costs that epoch.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    initial_epoch = 0
    if resume:
        resumed, history, initial_epoch = resume_run(out_dir)
        if vocab_size_of(resumed) != vocab_size_of(model):
            raise CaptionError(f"{out_dir}'s checkpoint predicts over {vocab_size_of(resumed)} words but this run's "
                               f"vocabulary has {vocab_size_of(model)}: resume with the same data and settings")
        model = resumed
    callbacks = [schedule or learning_rate_schedule(), Checkpoints(out_dir, history, patience)]
    if initial_epoch < epochs:
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            _fit_multi_worker(model, train_data, dev_data, epochs, initial_epoch, callbacks, verbose)
        else:
            model.fit(train_data, validation_data=dev_data, epochs=epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, verbose=verbose, shuffle=False)  # tf.data shuffles
    best = keras.models.load_model(out_dir / "best.keras")
    return best, history


def train_model(model: keras.Model, splits: dict[str, dict[str, list[str]]], vocab: Vocabulary,
                features: dict[str, np.ndarray], out_dir: str | os.PathLike, config: TrainConfig,
                resume: bool = False, verbose: int | str = "auto") -> tuple[keras.Model, list[dict]]:
    """Train on the train split and stop early on the dev split; writes checkpoints, tokenizer.p,
    history.json, config.json and loss.png to `out_dir`. Returns the best model by dev loss and the history.

    Runs under distribution_strategy(): config.batch_size is the global batch, split across the replicas
    of every worker; the model's weights are copied into variables mirrored across them. Only the chief
    writes to `out_dir`; other workers write to a temporary folder, removed at the end (as TF documents).
    """
    train_arrays = caption_arrays(splits["train"], vocab, features)  # fails at once if features are missing
    dev_arrays = caption_arrays(splits["dev"], vocab, features)
    strategy = distribution_strategy()
    out_dir = Path(out_dir)
    chief = cluster_position()[0] == 0
    write_dir = out_dir if chief else Path(tempfile.mkdtemp(prefix="caption-worker-"))
    if not chief and resume and out_dir.is_dir():
        shutil.copytree(out_dir, write_dir, dirs_exist_ok=True)
    try:
        vocab.save(write_dir / TOKENIZER_FILE)
        write_text(write_dir / "config.json", json.dumps(asdict(config), indent=1))
        keras.utils.set_random_seed(config.seed)
        train_data = make_dataset(*train_arrays, config.batch_size, True, config.seed)
        dev_data = make_dataset(*dev_arrays, config.batch_size, False)
        with strategy.scope():
            if strategy.num_replicas_in_sync > 1:
                weights, model = model.get_weights(), keras.models.clone_model(model)
                model.set_weights(weights)
            compile_model(model, config.learning_rate, config.label_smoothing)
            schedule = learning_rate_schedule(config.lr_schedule, config.learning_rate, config.epochs)
            best, history = fit(model, train_data, dev_data, write_dir, config.epochs, config.patience, resume,
                                verbose, schedule)
        plot_history(history, write_dir / "loss.png")
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    return best, history
