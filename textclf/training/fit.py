"""Fitting prepared data: the training loop on its rows, then validation metrics.  No file output but checkpoints.

``textclf.training.run`` wraps this with the run folder and the export, ``textclf.estimator`` with scikit-learn's API.
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
from textclf.training.loop import run_loop
from textclf.training.parts import part_probabilities, parts_metrics
from textclf.training.prepare import Prepared
from textclf.training.rows import predictions
from textclf.training.wide import BlendMonitor, LinearFitsInBackground, fit_wide


@dataclasses.dataclass
class FittedPipeline:
    """A fitted tokenizer and model, with the settings they were fitted with (``max_len``, ``split_mode`` resolved).

    ``training_seconds`` includes a resumed run's interrupted part; ``phase_seconds`` splits this process's time:
    ``encoding``, ``building_and_tracing`` (the loop's time outside epochs and validation), ``epochs``,
    ``validation``, ``wide`` (after the epochs; its linear fits overlap them).  ``validation_probabilities``: with a
    wide branch, the outputs on the validation rows of the blend whose linear part saw only the training rows (the
    validation metrics are theirs); ``None`` when they are ``model``'s.  ``validation_parts``: with a wide branch,
    each part's own probabilities on those rows (:func:`textclf.training.parts.part_probabilities`).  ``wide``:
    what the wide branch chose and how (``run.json``'s ``wide``).
    """

    tokenizer: Tokenizer
    config: TrainConfig
    model: object  # keras.Model
    history: dict
    training_seconds: float
    valid_rows: object = None
    epoch_seconds: dict = dataclasses.field(default_factory=dict)
    phase_seconds: dict = dataclasses.field(default_factory=dict)
    validation_probabilities: np.ndarray | None = None
    wide: dict | None = None
    validation_parts: dict | None = None

    def probabilities(self, texts) -> np.ndarray:
        """``[len(texts), num_classes]`` probabilities (Python tokenizer + Keras model)."""
        ids = encode(self.tokenizer, texts, self.config.max_len, self.config.padding, self.config.truncating, trim=True)
        return predict_probabilities(self.model, ids, texts)


def fit_prepared(requested: TrainConfig, prepared: Prepared, in_progress=None, verbose="auto",
                 tensorboard=None, on_epoch_end=None) -> FittedPipeline:
    """Trains a model on ``prepared`` data in the training loop (:func:`textclf.training.loop.run_loop`).

    ``requested`` is saved with the checkpoint and compared on resume.  ``on_epoch_end(epoch, model)`` is called
    after each epoch (:func:`textclf.training.loop.run_loop`).  When ``in_progress``
    (:class:`textclf.training.resume.InProgress`) holds an interrupted run, its vocabulary and settings are reused
    and training resumes.

    Example:
        >>> prepared = prepare_in_memory(TrainConfig(epochs=2), "data/rt_polarity.csv")
        >>> fit_prepared(TrainConfig(epochs=2), prepared).history["val_loss"]
    """
    saved = in_progress.saved_setup(requested) if in_progress is not None else None
    tokenizer, config = saved if saved is not None else (prepared.tokenizer, prepared.config)
    started = time.perf_counter()
    train_rows, valid_rows = prepared.parts(tokenizer, config)
    encoded = time.perf_counter()
    if saved is None and in_progress is not None:
        in_progress.save_setup(requested, config, tokenizer, prepared.classes, prepared)
    log(f"vocabulary {len(tokenizer.word_index)} words (embedding rows {tokenizer.vocabulary_size}), "
        f"max_len {config.max_len}")
    # The wide branch's linear fits need only the rows: they run in a thread while the recurrent model trains; from
    # the first epoch's end, early stopping follows the blend's validation macro-F1, epochs that end before the fits'
    # validation logits being scored once those come (docs/PERFORMANCE.md).
    linear = (LinearFitsInBackground(prepared.classes, train_rows, valid_rows, config.seed,
                                     getattr(prepared, "positions", None))
              if config.wide == "tfidf" else None)
    monitor = BlendMonitor(linear, valid_rows) if linear is not None else None
    model, history, seconds = run_loop(config, tokenizer, prepared.classes, train_rows, valid_rows, in_progress,
                                       verbose, tensorboard, monitor, on_epoch_end)
    looped = time.perf_counter()
    validation_probabilities, validation_parts, wide_report = None, None, None
    if linear is not None:
        fits = linear.result()
        validation_probabilities, model, recurrent = fit_wide(model, config, tokenizer, prepared.classes, valid_rows,
                                                              fits)
        validation_parts = part_probabilities(recurrent, fits.valid_logits, fits.temperature)
        wide_report = fits.report
    epochs, validation = sum(seconds["training"]), sum(seconds["validation"])
    phases = {"encoding": encoded - started, "building_and_tracing": looped - encoded - epochs - validation,
              "epochs": epochs, "validation": validation, "wide": time.perf_counter() - looped}
    # A resumed run counts the time its interrupted part spent up to the checkpoint too.
    earlier = in_progress.previous_seconds if in_progress is not None else 0.0
    return FittedPipeline(tokenizer, config, model, history, earlier + looped - encoded, valid_rows, seconds, phases,
                          validation_probabilities, wide_report, validation_parts)


def validation_metrics(fitted: FittedPipeline, classes):
    """``(config, metrics)`` on the validation rows; ``config`` gets a tuned ``threshold`` (multi-label, none set).

    With a wide branch, ``metrics["parts"]`` holds each part's accuracy and macro-F1 alone, and the blend's.
    """
    config = fitted.config
    if fitted.validation_probabilities is not None:  # The wide branch's blend, computed when it was fitted.
        truths = fitted.valid_rows.class_indices().astype(np.int32)
        metrics = classification_metrics_of_indices(
            truths, fitted.validation_probabilities.argmax(axis=1).astype(np.int32), classes)
        metrics["parts"] = parts_metrics(truths, fitted.validation_probabilities, fitted.validation_parts, classes)
        return config, metrics
    truths, outputs = predictions(fitted.model, fitted.valid_rows, config.multi_label)
    if not config.multi_label:
        return config, classification_metrics_of_indices(truths, outputs, classes)
    if config.threshold is None:
        config = config.replace(threshold=tune_threshold(outputs, truths))
        log(f"threshold {config.threshold} (best validation micro-F1)")
    return config, multilabel_metrics(truths, outputs, classes, config.threshold)
