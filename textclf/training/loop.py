"""The training loop: every run trains here, on one device, on several (``mirrored``) or on a cluster.

A custom loop on ``tf.distribute`` rather than ``model.fit``, because it must resume a killed run mid-epoch exactly
and ``model.fit`` fails under MultiWorkerMirroredStrategy (docs/DISTRIBUTED.md, "Why not model.fit").  It computes
what ``model.fit`` with ``EarlyStopping(monitor="val_loss", restore_best_weights=True)`` and
``ReduceLROnPlateau(factor=0.5, patience=1)`` would, and checkpoints all it needs to continue (:class:`LoopState`).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np

from textclf.training.cluster import get_strategy, worker_role
from textclf.log import log, showing_progress
from textclf.data.counts import balanced_class_weights
from textclf.training.rows import Rows, input_function
from textclf.training.setup import build_fit_model, make_optimizer
from textclf.training.steps import STEPS_PER_CALL, batches, step_functions
from textclf.errors import TextclfError

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
# Fewer training steps an epoch than this, and the loop suggests a smaller batch.
FEW_STEPS = 4
# A mean cross-entropy this large means logits thousands apart: the softmax is saturated and the weights have
# left any useful range, though float32 has not reached inf yet (learning rate 1e30 gives ~1e30 here).
DIVERGED_LOSS = 1e4
# keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)'s rule, with its min_delta default.
_PLATEAU_FACTOR, _PLATEAU_PATIENCE, _PLATEAU_MIN_DELTA = 0.5, 1, 1e-4


class LoopState:
    """The training position and bookkeeping, as variables saved with the weights in one checkpoint (every attribute).

    Created outside the strategy's scope: every worker updates its own copy identically from all-reduced values.
    """

    def __init__(self, model, epochs: int):
        import tensorflow as tf

        self.epoch = tf.Variable(0, dtype=tf.int64)  # Epochs completed.
        self.step = tf.Variable(0, dtype=tf.int64)  # Steps done in the current epoch.
        self.global_step = tf.Variable(0, dtype=tf.int64)
        self.sums = tf.Variable(tf.zeros(3, tf.float64))  # Loss, correct, rows of the current epoch.
        self.history = tf.Variable(tf.zeros([epochs, len(HISTORY_KEYS)], tf.float64))
        self.best_loss = tf.Variable(math.inf, dtype=tf.float64)
        self.best_epoch = tf.Variable(-1, dtype=tf.int64)
        self.wait = tf.Variable(0, dtype=tf.int64)
        self.plateau_best = tf.Variable(math.inf, dtype=tf.float64)
        self.plateau_wait = tf.Variable(0, dtype=tf.int64)
        self.finished = tf.Variable(False)
        self.best_weights = [tf.Variable(weight.numpy(), trainable=False) for weight in model.weights]

    def keep_best_weights(self, model) -> None:
        for kept, weight in zip(self.best_weights, model.weights):
            kept.assign(weight.numpy())

    def restore_best_weights(self, model) -> None:
        for kept, weight in zip(self.best_weights, model.weights):
            weight.assign(kept.numpy())


def _check_workers_agree(strategy, state: LoopState, where) -> None:
    """Stops every worker with the same error when they restored different positions."""
    import tensorflow as tf

    position = tf.reshape(tf.cast(state.global_step, tf.int64), [1])

    def local_position():
        return position

    @tf.function
    def every_position():
        return strategy.gather(strategy.run(local_position), axis=0)

    positions = sorted(set(every_position().numpy().tolist()))
    if len(positions) > 1:
        raise TextclfError(f"The workers restored different checkpoints (global steps {positions}) from {where}: "
                         "every worker must see the chief's --output folder (shared storage), or pass --restart "
                         "to every worker")


def run_loop(config, tokenizer, classes, train_rows: Rows, valid_rows: Rows, in_progress=None, verbose="auto",
             tensorboard=None, monitor=None, on_epoch_end=None):
    """Builds the model in the strategy's scope and trains it; resumes from ``in_progress`` when it holds a run.

    Args:
        config: Settings, ``max_len`` resolved.
        train_rows, valid_rows: :class:`textclf.training.rows.Rows`; validation drives early stopping and plateau.
        in_progress: A :class:`textclf.training.resume.InProgress` to checkpoint into and resume from, or ``None``.
        verbose: 0 for no per-epoch log lines; 1 (or "auto" on a terminal) adds a progress bar.
        tensorboard: Folder for TensorBoard logs (chief only).
        monitor: ``monitor(model)``, a validation score to maximise after each epoch (the wide branch's blend
            macro-F1, :class:`textclf.training.wide.BlendMonitor`): early stopping and the best weights follow it
            instead of the validation loss.  One with ``outputs(model)``, ``ready()`` and ``score(outputs)`` lets
            epochs go on while it cannot score yet, and scores them once it can (``_Training.settle``).
        on_epoch_end: ``on_epoch_end(epoch, model)`` after each epoch's bookkeeping (``epoch`` from 0), before its
            checkpoint, ``model`` holding that epoch's weights (an epoch scored later is reported then; one after
            the epoch that stopped the run, never): a caller's own per-epoch measurements (the time-to-quality
            bench scores each epoch).

    Returns:
        ``(model, history, seconds)``: the model with the best epoch's weights (lowest validation loss, or highest
        ``monitor`` score); per-epoch
        ``HISTORY_KEYS`` (``learning_rate`` with the plateau schedule only); ``{"training": [...], "validation":
        [...]}`` seconds of each epoch this process ran (a resumed run's first one is the part after the checkpoint).
    """
    training = _Training(config, classes, train_rows, valid_rows, in_progress, monitor, on_epoch_end)
    training.build(tokenizer, classes)
    training.resume()
    training.compile_steps(classes, tensorboard)
    seconds = training.run_epochs(verbose)
    return training.model, training.finish(), seconds


def _full_epoch_steps(config, replicas: int, rows: int) -> int:
    """Steps of an epoch of full batches; refuses a batch the replicas cannot share, notes a batch too large."""
    if config.batch_size % replicas:
        raise TextclfError(f"`batch_size` is the global batch and must be divisible by the "
                         f"{replicas} replicas. Received: batch_size={config.batch_size}")
    steps = math.ceil(rows / config.batch_size)  # Without buckets' partial batches.
    if steps < FEW_STEPS:
        # The default batch (256) suits thousands of rows; on a few hundred an epoch is one or two updates.
        log(f"note: {rows} training rows make {steps} step{'s' * (steps != 1)} "
            f"an epoch at batch_size={config.batch_size}; a smaller --batch-size (for example 32) gives more "
            "updates per epoch")
    return steps


def _summary_writers(tensorboard) -> dict:
    """``{"train": writer, "validation": writer}`` under the ``tensorboard`` folder."""
    import tensorflow as tf

    # tf.summary.scalar needs the tensorboard package; say so before training, not after an epoch.
    if importlib.util.find_spec("tensorboard") is None:
        raise TextclfError("--tensorboard needs the tensorboard package: pip install tensorboard")
    return {part: tf.summary.create_file_writer(str(Path(tensorboard) / part)) for part in ("train", "validation")}


def _write_summaries(writers: dict, row: list, epoch: int) -> None:
    """An epoch's loss and accuracy (``row``: ``HISTORY_KEYS`` values) in TensorBoard."""
    import tensorflow as tf

    for part, offset in (("train", 0), ("validation", 2)):
        with writers[part].as_default():
            tf.summary.scalar("epoch_loss", row[offset], step=epoch)
            tf.summary.scalar("epoch_accuracy", row[offset + 1], step=epoch)


class _Training:
    """One run of the loop: the model, its optimizer and :class:`LoopState`, and what every epoch uses.

    ``run_loop`` calls its methods in order: ``build``, ``resume``, ``compile_steps``, ``run_epochs``, ``finish``.
    """

    def __init__(self, config, classes, train_rows: Rows, valid_rows: Rows, in_progress, monitor=None,
                 on_epoch_end=None):
        self.config, self.train_rows, self.valid_rows, self.in_progress = config, train_rows, valid_rows, in_progress
        self.monitor, self.on_epoch_end = monitor, on_epoch_end
        self.strategy, self.role = get_strategy(config.strategy), worker_role(config.strategy)
        # A monitor that cannot score yet (the wide branch's search still running) lets up to `patience` + 1 epochs
        # train before the loop waits: each is scored later on its own outputs and weights, so the run stops and
        # keeps the epochs it would have waiting at once (docs/PERFORMANCE.md, "Time to quality").  Not with
        # mid-epoch checkpoints or several workers, whose saves must hold every epoch's bookkeeping.
        self.deferred = (hasattr(monitor, "ready") and not config.checkpoint_every
                         and config.strategy != "multiworker")
        self.pending = []  # (epoch, history row, (seconds, training seconds), monitor outputs, weights)
        self.full_epoch_steps = _full_epoch_steps(config, self.strategy.num_replicas_in_sync, len(train_rows))
        self.weights_by_class = (balanced_class_weights(train_rows.label_counts, classes)
                                 if config.class_weight == "balanced" else None)
        self.manager, self.writers, self.loop_started = None, None, None

    def build(self, tokenizer, classes) -> None:
        """The model and optimizer in the strategy's scope, the state, and the checkpoint that holds them all."""
        import tensorflow as tf

        with self.strategy.scope():
            self.model = build_fit_model(self.config, tokenizer, classes)
            self.optimizer = make_optimizer(self.config, self.full_epoch_steps)
            self.optimizer.build(self.model.trainable_variables)  # Its variables must exist before a restore.
        self.state = LoopState(self.model, self.config.epochs)
        self.checkpoint = tf.train.Checkpoint(model_variables=list(self.model.variables), optimizer=self.optimizer,
                                              **vars(self.state))

    def resume(self) -> None:
        """Restores the in-progress run's latest checkpoint, if any; every later save goes to its folder."""
        import tensorflow as tf

        in_progress, state = self.in_progress, self.state
        if in_progress is None:
            return
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(in_progress.write_dir), max_to_keep=1)
        latest = tf.train.latest_checkpoint(str(in_progress.checkpoint_dir)) if in_progress.resuming else None
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            log(f"resuming from {latest}: epoch {int(state.epoch) + 1}/{self.config.epochs}, step {int(state.step)} "
                f"({int(state.global_step)} steps trained)" + (", training had finished" if state.finished else ""))
        elif in_progress.resuming:
            log(f"resuming from {in_progress.path}: no checkpoint was written yet, so training starts at epoch 1")
        if self.config.strategy == "multiworker":
            _check_workers_agree(self.strategy, state, in_progress.checkpoint_dir)

    def compile_steps(self, classes, tensorboard) -> None:
        """The compiled training and validation steps, the validation input, and the chief's TensorBoard writers."""
        config, strategy = self.config, self.strategy
        self.train_steps, make_evaluate_step = step_functions(
            strategy, self.model, self.optimizer, classes, self.weights_by_class, self.state,
            multi_label=config.multi_label)
        # Validation sums loss and counts over every row, so its batches may be length-bucketed like training's
        # (less padding; only the order of the float sums changes).
        self.valid_input = strategy.distribute_datasets_from_function(
            input_function(self.valid_rows, config.batch_size, bucket=config.bucketing))
        self.evaluate_step = make_evaluate_step(self.valid_input.element_spec)
        if tensorboard and self.role.is_chief:
            self.writers = _summary_writers(tensorboard)

    def save(self) -> None:
        """A checkpoint of the run so far, when it has an in-progress folder."""
        # Numbered by the manager's own counter, so a save never rewrites the files the last one left.
        if self.manager is not None:
            self.manager.save()
            # Training time up to this checkpoint, so a resumed run reports the whole run's time.
            self.in_progress.record_seconds(time.perf_counter() - self.loop_started)

    def run_epochs(self, verbose) -> dict:
        """Trains and validates epoch by epoch until the last or an early stop; the seconds of each part."""
        import keras

        config, state = self.config, self.state
        self.loop_started = time.perf_counter()
        seconds = {"training": [], "validation": []}
        steps_per_epoch = None if config.bucketing and config.padding == "post" else self.full_epoch_steps
        show_bar = self.role.is_chief and showing_progress() and (
            verbose == 1 or (verbose == "auto" and sys.stdout.isatty()))
        while not bool(state.finished) and int(state.epoch) < config.epochs:
            epoch, started, skipped = int(state.epoch), time.perf_counter(), int(state.step)
            bar = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "accuracy"]) if show_bar else None
            self.train_epoch(epoch, bar)
            training_seconds = time.perf_counter() - started
            if bar is not None:
                bar.update(int(state.step), finalize=True)  # Ends the bar's line, even with an unknown step count.
            # Bucketed epochs have a step count known only once one has run (Keras's progress bar says "Unknown").
            steps_per_epoch = steps_per_epoch or (int(state.step) if int(state.step) and not skipped else None)
            validation_started = time.perf_counter()
            valid_sums = self.validate()
            seconds["training"].append(training_seconds)
            seconds["validation"].append(time.perf_counter() - validation_started)
            self.end_epoch(epoch, valid_sums, verbose, started, training_seconds)
        return seconds

    def train_epoch(self, epoch: int, bar) -> None:
        """Trains on the rest of the epoch, ``STEPS_PER_CALL`` steps a call, saving every ``checkpoint_every``."""
        import tensorflow as tf

        config, state = self.config, self.state
        train_input = self.strategy.distribute_datasets_from_function(input_function(
            self.train_rows, config.batch_size, seed=config.seed, epoch=epoch, skip_steps=int(state.step),
            bucket=config.bucketing))
        iterator = iter(train_input)
        while True:
            limit = STEPS_PER_CALL
            if config.checkpoint_every:
                # Stop at the next multiple of checkpoint_every, to save there.
                limit = min(limit, config.checkpoint_every - int(state.global_step) % config.checkpoint_every)
            before = int(state.step)
            self.train_steps(iterator, tf.constant(limit, tf.int64))
            done = int(state.step) - before
            if done and config.checkpoint_every and int(state.global_step) % config.checkpoint_every == 0:
                self.save()
            if bar is not None and done:
                bar.update(int(state.step), list(zip(("loss", "accuracy"), _means(state.sums.numpy()))))
            if done < limit:
                return

    def validate(self) -> np.ndarray:
        """``[loss, correct, rows]`` sums over the validation rows."""
        valid_sums = np.zeros(3)
        for batch in batches(self.valid_input):
            valid_sums += self.evaluate_step(batch).numpy()
        return valid_sums

    def end_epoch(self, epoch: int, valid_sums, verbose, started: float, training_seconds: float) -> None:
        """Records the epoch, applies the plateau rule and early stopping (or defers it), logs it, moves on, saves."""
        import keras
        import tensorflow as tf

        config, state = self.config, self.state
        learning_rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        row = [*_means(state.sums.numpy()), *_means(valid_sums), learning_rate]
        if self.pending and _diverged(row):
            if self.settle(verbose):  # An earlier epoch ends the run: a run that waited never trained this one.
                state.finished.assign(True)
                self.save()
                return
        self.stop_if_diverged(epoch, row)
        state.history[epoch].assign(row)
        if config.lr_schedule == "plateau":
            _plateau(state, self.optimizer, epoch, row[2], learning_rate)
        if self.writers:
            _write_summaries(self.writers, row, epoch)
        state.epoch.assign_add(1)
        state.step.assign(0)
        state.sums.assign(tf.zeros(3, tf.float64))
        timing = (time.perf_counter() - started, training_seconds)
        if self.deferred:
            self.pending.append((epoch, row, timing, self.monitor.outputs(self.model),
                                 [weight.numpy() for weight in self.model.weights]))
            if not (self.monitor.ready() or len(self.pending) > config.patience or int(state.epoch) == config.epochs):
                return  # No checkpoint while an epoch waits for its score: a resumed run trains it again.
            stop = self.settle(verbose)
        else:
            score = None if self.monitor is None else self.monitor(self.model)
            stop = _early_stopping(state, self.model, epoch, row[2] if score is None else -score, config.patience)
            self.report(epoch, row, score, timing, verbose)
        state.finished.assign(stop or int(state.epoch) == config.epochs)
        self.save()

    def settle(self, verbose) -> bool:
        """Scores the pending epochs in order (waiting for the monitor) and applies early stopping to each with its
        own weights; True to stop, the run then ending at the epoch that stopped it (later ones are dropped)."""
        state, current = self.state, [weight.numpy() for weight in self.model.weights]
        pending, self.pending, stop = self.pending, [], False
        for epoch, row, timing, outputs, weights in pending:
            score = self.monitor.score(outputs)
            _assign(self.model, weights)
            stop = _early_stopping(state, self.model, epoch, -score, self.config.patience)
            self.report(epoch, row, score, timing, verbose)
            if stop:
                state.epoch.assign(epoch + 1)
                break
        _assign(self.model, current)
        return stop

    def report(self, epoch: int, row: list, score, timing, verbose) -> None:
        """The epoch's log line and the caller's ``on_epoch_end`` (the model holding the epoch's weights)."""
        if verbose:
            log(f"epoch {epoch + 1}/{self.config.epochs}: " + ", ".join(
                f"{name} {value:.4f}" for name, value in zip(HISTORY_KEYS[:4], row)) +
                ("" if score is None else f", blend val_macro_f1 {score:.4f}") +
                f" ({timing[0]:.2f} s, training {timing[1]:.2f} s)")
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch, self.model)

    def stop_if_diverged(self, epoch: int, row: list) -> None:
        """Raises, discarding the in-progress run, when the training or validation loss left any useful range."""
        if not _diverged(row):
            return
        if self.in_progress is not None:
            self.in_progress.discard()  # Its weights lead here: nothing worth resuming.
        raise TextclfError(
            f"The loss became {row[0]:.4g} (validation {row[2]:.4g}) in epoch {epoch + 1} at learning rate "
            f"{row[4]:g}: training diverged, and nothing was saved or exported. Lower --learning-rate "
            "(or --clipnorm) and train again")

    def finish(self) -> dict:
        """Restores the best epoch's weights; the history of the epochs run, ``{key: [value per epoch]}``."""
        state = self.state
        if int(state.best_epoch) >= 0:
            best = float(state.best_loss)  # The validation loss, or minus the monitored score.
            why = f"lowest val_loss {best:.4f}" if self.monitor is None else f"highest blend val_macro_f1 {-best:.4f}"
            log(f"restoring the weights of the best epoch: {int(state.best_epoch) + 1} ({why})")
            state.restore_best_weights(self.model)
        history = state.history.numpy()[:int(state.epoch)]
        keys = HISTORY_KEYS if self.config.lr_schedule == "plateau" else HISTORY_KEYS[:4]
        return {key: history[:, column].tolist() for column, key in enumerate(keys)}


def _diverged(row: list) -> bool:
    """Whether the training or validation loss of a history ``row`` left any useful range."""
    return not all(math.isfinite(loss) and loss < DIVERGED_LOSS for loss in (row[0], row[2]))


def _assign(model, weights) -> None:
    for variable, value in zip(model.weights, weights):
        variable.assign(value)


def _means(sums) -> list:
    """``[loss, accuracy]`` means of ``[loss, correct, rows]`` sums."""
    return [sums[0] / max(sums[2], 1), sums[1] / max(sums[2], 1)]


def _early_stopping(state: LoopState, model, epoch: int, val_loss: float, patience: int) -> bool:
    """``keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)``'s rule; True to stop.

    ``val_loss``: the validation loss, or minus the monitored score."""
    if int(state.best_epoch) < 0:
        state.keep_best_weights(model)
        state.best_epoch.assign(epoch)
    state.wait.assign_add(1)
    if val_loss < float(state.best_loss):
        state.best_loss.assign(val_loss)
        state.best_epoch.assign(epoch)
        state.keep_best_weights(model)
        state.wait.assign(0)
        return False
    if int(state.wait) >= patience and epoch > 0:
        log(f"epoch {epoch + 1}: early stopping")
        return True
    return False


def _plateau(state: LoopState, optimizer, epoch: int, val_loss: float, learning_rate: float) -> None:
    """``keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)``'s rule."""
    if val_loss < float(state.plateau_best) - _PLATEAU_MIN_DELTA:
        state.plateau_best.assign(val_loss)
        state.plateau_wait.assign(0)
        return
    state.plateau_wait.assign_add(1)
    if int(state.plateau_wait) >= _PLATEAU_PATIENCE:
        optimizer.learning_rate = learning_rate * _PLATEAU_FACTOR
        state.plateau_wait.assign(0)
        log(f"epoch {epoch + 1}: reducing the learning rate to {learning_rate * _PLATEAU_FACTOR}")
