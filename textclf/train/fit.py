"""Fitting: tokenizer → ``max_len`` → input pipelines → model → ``model.fit``.  No file output.

``training.py`` wraps this with data loading, metrics and the run folder;
``estimator.py`` wraps it with the scikit-learn API.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings

import numpy as np

from textclf.config import TrainConfig
from textclf.data.dataset import Dataset
from textclf.train.batches import EncodedTexts, dense_dataset, make_dataset
from textclf.model.factory import class_probabilities
from textclf.text.sequences import encode
from textclf.text.rules import cjk_share
from textclf.text.tokenizer import Tokenizer
from textclf.log import log
from textclf.train.setup import build_fit_model, class_weights, loss_name, make_optimizer, targets_of


def resolve_max_len(config: TrainConfig, sequences) -> int:
    """``config.max_len``, or the configured percentile of sequence lengths."""
    if config.max_len is not None:
        return config.max_len
    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64)
    chosen = int(math.ceil(np.percentile(lengths, config.max_len_percentile))) if len(lengths) else 1
    return int(min(max(chosen, 1), config.max_len_limit))


def datasets(config: TrainConfig, tokenizer: Tokenizer, classes, train_data: Dataset, valid_data: Dataset):
    """``(train, valid)`` tf.data pipelines; the training one shuffles with the run's seed.

    Post-padding (the default) is tokenized once into flat arrays and batched
    by length (see ``textclf.train.batches``); pre-padding keeps fixed-length rows.
    """
    train_targets = targets_of(config, train_data.labels, classes)
    valid_targets = targets_of(config, valid_data.labels, classes)
    if config.padding == "pre":
        return (dense_dataset(tokenizer, train_data.texts, train_targets, config, shuffle_seed=config.seed),
                dense_dataset(tokenizer, valid_data.texts, valid_targets, config))
    train_encoded = EncodedTexts.from_texts(tokenizer, train_data.texts, config.max_len, config.truncating)
    valid_encoded = EncodedTexts.from_texts(tokenizer, valid_data.texts, config.max_len, config.truncating)
    return (make_dataset(train_encoded, train_targets, config.batch_size, config.seed, bucket=config.bucketing),
            make_dataset(valid_encoded, valid_targets, config.batch_size, bucket=False))


def fit(config: TrainConfig, tokenizer: Tokenizer, classes, train_data: Dataset, valid_data: Dataset, verbose="auto",
        tensorboard=None, callbacks=None, checkpoint=None):
    """Builds, compiles and fits the model.

    Args:
        checkpoint: A :class:`textclf.train.resume.InProgress` to checkpoint
            into and resume from.  Runs with one, ``mirrored`` or
            ``multiworker`` runs, and streamed rows
            (:class:`textclf.train.streamed_rows.StreamedRows`) train in
            :mod:`textclf.train.loop`'s loop (it says why); the others in ``model.fit``.

    Returns:
        ``(model, history)`` where ``model`` has the weights of the epoch
        with the lowest validation loss.
    """
    import keras

    # Streamed rows (textclf.train.streamed_rows) have no texts in memory for model.fit's pipelines: the loop reads them.
    if checkpoint is not None or config.strategy != "none" or not hasattr(train_data, "texts"):
        from textclf.train.loop import fit_in_loop

        return fit_in_loop(config, tokenizer, classes, train_data, valid_data, checkpoint=checkpoint,
                           verbose=verbose, tensorboard=tensorboard, callbacks=callbacks)
    train_batches, valid_batches = datasets(config, tokenizer, classes, train_data, valid_data)
    model = build_fit_model(config, tokenizer, classes)
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=loss_name(classes, config.multi_label), metrics=["accuracy"])
    callbacks = list(callbacks or []) + [keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1)]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard)))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, verbose=1))
    with warnings.catch_warnings():
        # Bucketed datasets have no known length, so Keras warns at the end of
        # the first epoch that the input "ran out of data"; that is expected.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        history = model.fit(
            train_batches,
            validation_data=valid_batches,
            epochs=config.epochs,
            callbacks=callbacks,
            class_weight=class_weights(train_data.labels, classes) if config.class_weight == "balanced" else None,
            shuffle=False,  # The tf.data pipeline already shuffles, with the run's seed.
            verbose=(1 if sys.stdout.isatty() else 2) if verbose == "auto" else verbose,
        )
    return model, {name: [float(value) for value in values] for name, values in history.history.items()}


def _without_padding_columns(ids: np.ndarray) -> np.ndarray:
    """``ids`` less the columns that are padding in every row, at either end (no row is all padding).

    Masked steps change no output, so this is exact, and a batch of short texts
    does not run the recurrent layers over a long ``max_len``.
    """
    used = np.flatnonzero(ids.any(axis=0))
    return ids[:, used[0]: used[-1] + 1] if used.size else ids


def predict_probabilities(model, ids, batch_size=1024) -> np.ndarray:
    """``[rows, num_classes]`` probabilities, computed batch by batch with direct calls."""
    outputs = [
        np.asarray(class_probabilities(model(_without_padding_columns(ids[start : start + batch_size]),
                                             training=False)))
        for start in range(0, len(ids), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


@dataclasses.dataclass
class FittedPipeline:
    """A fitted tokenizer and model, with the settings they were fitted with."""

    tokenizer: Tokenizer
    config: TrainConfig
    model: object  # keras.Model
    history: dict
    training_seconds: float

    def probabilities(self, texts) -> np.ndarray:
        """``[len(texts), num_classes]`` probabilities (Python tokenizer + Keras model)."""
        ids = encode(self.tokenizer, texts, self.config.max_len, self.config.padding, self.config.truncating, trim=True)
        return predict_probabilities(self.model, ids)


def new_tokenizer(config: TrainConfig) -> Tokenizer:
    """An unfitted tokenizer with the config's rules."""
    rules = config.text_rules()
    return Tokenizer(num_words=config.num_words, filters=rules.filters, lower=rules.lower, split=rules.split,
                     char_level=rules.char_level, oov_token=config.oov_token, cjk=rules.cjk)


def resolve_split_mode(config: TrainConfig, texts) -> TrainConfig:
    """``split_mode="auto"`` becomes ``cjk`` when most texts are mostly CJK, else ``word`` (and says so)."""
    if config.split_mode != "auto":
        return config
    share = cjk_share(texts)
    mode = "cjk" if share > 0.5 else "word"
    if mode == "cjk":
        log(f"split_mode auto: {share:.0%} of training texts are mostly Chinese/Japanese/Korean, "
            "so each CJK character is a token (Latin words and numbers stay whole)")
    return config.replace(split_mode=mode)


def resumed_setup(checkpoint, requested: TrainConfig):
    """``(tokenizer, settings)`` of the interrupted run ``checkpoint`` holds, or ``None`` for a fresh run.

    The settings are the interrupted run's, resolved (``max_len``...), with
    this run's ``checkpoint_every``, the one setting that may change on resume.
    """
    saved = checkpoint.saved_setup() if checkpoint is not None else None
    if saved is None:
        return None
    tokenizer, resolved = saved
    log(f"resuming the interrupted run in {checkpoint.path} with its vocabulary and settings (--restart discards it)")
    return tokenizer, resolved.replace(checkpoint_every=requested.checkpoint_every)


def fit_pipeline(config: TrainConfig, train_data: Dataset, valid_data: Dataset, classes, verbose="auto",
                 tensorboard=None, callbacks=None, checkpoint=None) -> FittedPipeline:
    """Fits the tokenizer on the training texts, resolves ``max_len``, trains the model.

    No file output, except checkpoints into ``checkpoint`` (a
    :class:`textclf.train.resume.InProgress`); when it holds an interrupted
    run, its tokenizer and resolved settings are reused.
    """
    saved = resumed_setup(checkpoint, config)
    if saved is not None:
        tokenizer, config = saved
    else:
        requested = config
        config = resolve_split_mode(config, train_data.texts)
        tokenizer = new_tokenizer(config)
        tokenizer.fit_on_texts(train_data.texts)
        config = config.replace(max_len=resolve_max_len(config, tokenizer.texts_to_sequences_generator(train_data.texts)))
        if checkpoint is not None:
            checkpoint.save_setup(requested, config, tokenizer, classes, train_data, valid_data)
    log(f"vocabulary {len(tokenizer.word_index)} words (embedding rows {tokenizer.vocabulary_size}), max_len {config.max_len}")
    started = time.perf_counter()
    model, history = fit(config, tokenizer, classes, train_data, valid_data, verbose=verbose,
                         tensorboard=tensorboard, callbacks=callbacks, checkpoint=checkpoint)
    # A resumed run counts the time its interrupted part spent up to the checkpoint too.
    earlier = checkpoint.previous_seconds if checkpoint is not None else 0.0
    return FittedPipeline(tokenizer, config, model, history, earlier + time.perf_counter() - started)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
