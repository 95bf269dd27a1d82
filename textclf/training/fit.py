"""Fitting prepared data: the training loop on its rows, then validation metrics.  No file output but checkpoints.

``textclf.training.run`` wraps this with the run folder and the export;
``textclf.estimator`` wraps it with the scikit-learn API.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from textclf.config import TrainConfig
from textclf.evaluation.metrics import classification_metrics_of_indices
from textclf.evaluation.multilabel import multilabel_metrics, tune_threshold
from textclf.log import log
from textclf.model.factory import predict_probabilities
from textclf.text.sequences import encode
from textclf.text.tokenizer import Tokenizer
from textclf.training.loop import run_loop, write_weights_digest
from textclf.training.prepare import Prepared
from textclf.training.rows import predictions
from textclf.training.wide import fit_wide


@dataclasses.dataclass
class FittedPipeline:
    """A fitted tokenizer and model, with the settings they were fitted with.

    Attributes:
        tokenizer: The fitted tokenizer.
        config: The settings used (``max_len`` and ``split_mode`` resolved).
        model: The Keras model, with the weights of the epoch with the lowest validation loss.
        history: Per-epoch loss and accuracy, training and validation.
        training_seconds: Time in the training loop (a resumed run includes its interrupted part).
        valid_rows: The validation :class:`textclf.training.rows.Rows`.
        epoch_seconds: ``{"training": [...], "validation": [...]}`` seconds per epoch this process ran.
        phase_seconds: Where this process's time went: ``encoding`` the rows, ``building_and_tracing``
            (the model, the strategy, the compiled steps: the loop's time outside epochs and validation),
            ``epochs``, ``validation``, and ``wide`` (fitting the TF-IDF branch).
        validation_model: With a wide branch, the model whose linear part saw only the training rows (the
            validation metrics are its); ``None`` when that is ``model``.
    """

    tokenizer: Tokenizer
    config: TrainConfig
    model: object  # keras.Model
    history: dict
    training_seconds: float
    valid_rows: object = None
    epoch_seconds: dict = dataclasses.field(default_factory=dict)
    phase_seconds: dict = dataclasses.field(default_factory=dict)
    validation_model: object = None

    def probabilities(self, texts) -> np.ndarray:
        """``[len(texts), num_classes]`` probabilities (Python tokenizer + Keras model)."""
        ids = encode(self.tokenizer, texts, self.config.max_len, self.config.padding, self.config.truncating, trim=True)
        return predict_probabilities(self.model, ids)


def resumed_setup(in_progress, requested: TrainConfig):
    """``(tokenizer, settings)`` of the interrupted run ``in_progress`` holds, or ``None`` for a fresh run.

    The settings are the interrupted run's, resolved (``max_len``...), with
    this run's ``checkpoint_every``, the one setting that may change on resume.
    """
    saved = in_progress.saved_setup() if in_progress is not None else None
    if saved is None:
        return None
    tokenizer, resolved = saved
    log(f"resuming the interrupted run in {in_progress.path} with its vocabulary and settings (--restart discards it)")
    return tokenizer, resolved.replace(checkpoint_every=requested.checkpoint_every)


def fit_prepared(requested: TrainConfig, prepared: Prepared, in_progress=None, verbose="auto",
                 tensorboard=None) -> FittedPipeline:
    """Trains a model on ``prepared`` data in the training loop (:func:`textclf.training.loop.run_loop`).

    Args:
        requested: The settings as requested (saved with the checkpoint, compared on resume).
        prepared: The data, tokenizer and resolved settings (:mod:`textclf.training.prepare`).
        in_progress: The run's :class:`textclf.training.resume.InProgress` to
            checkpoint into, or ``None``; when it holds an interrupted run, its
            vocabulary and settings are reused and training resumes.
        verbose: 0 for no per-epoch log lines; 1 (or "auto" on a terminal) adds a progress bar.
        tensorboard: Folder for TensorBoard logs.

    Returns:
        A :class:`FittedPipeline`.

    Example:
        >>> prepared = prepare_in_memory(TrainConfig(epochs=2), "data/rt_polarity.csv")
        >>> fit_prepared(TrainConfig(epochs=2), prepared).history["val_loss"]
    """
    saved = resumed_setup(in_progress, requested)
    tokenizer, config = saved if saved is not None else (prepared.tokenizer, prepared.config)
    started = time.perf_counter()
    train_rows, valid_rows = prepared.parts(tokenizer, config)
    encoded = time.perf_counter()
    if saved is None and in_progress is not None:
        in_progress.save_setup(requested, config, tokenizer, prepared.classes, prepared)
    log(f"vocabulary {len(tokenizer.word_index)} words (embedding rows {tokenizer.vocabulary_size}), "
        f"max_len {config.max_len}")
    model, history, seconds = run_loop(config, tokenizer, prepared.classes, train_rows, valid_rows, in_progress=in_progress,
                                       verbose=verbose, tensorboard=tensorboard)
    looped = time.perf_counter()
    validation_model = None
    if config.wide == "tfidf":
        validation_model, model, config = fit_wide(model, config, tokenizer, prepared.classes, train_rows, valid_rows)
    write_weights_digest(model)  # The final weights, wide branch included (tests compare workers with it).
    epochs, validation = sum(seconds["training"]), sum(seconds["validation"])
    phases = {"encoding": encoded - started, "building_and_tracing": looped - encoded - epochs - validation,
              "epochs": epochs, "validation": validation, "wide": time.perf_counter() - looped}
    # A resumed run counts the time its interrupted part spent up to the checkpoint too.
    earlier = in_progress.previous_seconds if in_progress is not None else 0.0
    return FittedPipeline(tokenizer, config, model, history, earlier + looped - encoded, valid_rows, seconds, phases,
                          validation_model)


def validation_metrics(fitted: FittedPipeline, classes):
    """Metrics of the model's outputs on the validation rows.

    Returns:
        ``(config, metrics)``: ``config`` with the tuned ``threshold`` for a
        multi-label run that did not fix one; ``metrics`` as
        :func:`textclf.evaluation.metrics.classification_metrics` (single-label)
        or :func:`textclf.evaluation.multilabel.multilabel_metrics` return them.
    """
    config = fitted.config
    model = fitted.model if fitted.validation_model is None else fitted.validation_model
    truths, outputs = predictions(model, fitted.valid_rows, config.multi_label)
    if not config.multi_label:
        return config, classification_metrics_of_indices(truths, outputs, classes)
    if config.threshold is None:
        config = config.replace(threshold=tune_threshold(outputs, truths))
        log(f"threshold {config.threshold} (best validation micro-F1)")
    return config, multilabel_metrics(truths, outputs, classes, config.threshold)
