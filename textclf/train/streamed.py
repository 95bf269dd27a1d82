"""``train`` on a streamed file: the counting pass, fitting from the file, validation metrics from the file.

:func:`textclf.train.run.train` calls these when ``TrainConfig.streaming``
says to stream (:func:`textclf.data.streaming.should_stream`); the run folder,
checkpoints and export are the same as for data in memory.  Differences,
each because the rows are never held:

* the validation split is per row, not stratified (:class:`textclf.data.streaming.RowSplit`);
* ``split_mode="auto"`` is decided on the first 10,000 rows;
* the per-epoch shuffle is a buffer of 16,384 rows, with no full permutation
  first: a file sorted by label should be shuffled beforehand (a warning says so);
* validation metrics keep two int32 class indices per validation row (multi-label:
  the targets and probabilities, ``[rows, classes]`` float32 each).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time

from textclf.config import TrainConfig
from textclf.train.fit import FittedPipeline, fit, new_tokenizer, resolve_split_mode, resumed_setup
from textclf.log import log
from textclf.train.batches import SHUFFLE_BUFFER
from textclf.evaluate.metrics import classification_metrics_of_indices
from textclf.evaluate.multilabel import multilabel_metrics, tune_threshold
from textclf.train.streamed_rows import StreamedRows, streamed_predictions
from textclf.data.counts import streamed_max_len
from textclf.data.streaming import SPLIT_MODE_SAMPLE_ROWS, RowSplit, StreamSource, StreamSummary, count_pass


@dataclasses.dataclass
class StreamedSplit:
    """A streamed run's data after the counting pass.

    Attributes:
        source, valid_source: The training file, and the validation file when one was given.
        split: The per-row validation split of ``source`` (``None`` with a validation file).
        summary: What the counting pass found.
        tokenizer: Fitted on the training rows.
        config: The settings, ``split_mode`` and ``max_len`` resolved.
        classes: The labels, in output order.
    """

    source: StreamSource
    valid_source: StreamSource | None
    split: RowSplit | None
    summary: StreamSummary
    tokenizer: object
    config: TrainConfig
    classes: list

    def parts(self, tokenizer=None, config=None) -> tuple[StreamedRows, StreamedRows]:
        """``(train, valid)`` :class:`StreamedRows`, with this split's tokenizer and settings or the given ones."""
        tokenizer, config = tokenizer or self.tokenizer, config or self.config
        summary = self.summary
        train = StreamedRows(self.source, "train", self.split, summary.train_rows, tokenizer, config, self.classes,
                             summary.lengths, summary.fingerprint, summary.label_counts)
        if self.valid_source is not None:
            valid = StreamedRows(self.valid_source, "valid", None, summary.valid_rows, tokenizer, config, self.classes,
                                 fingerprint=summary.fingerprint)
        else:
            valid = StreamedRows(self.source, "valid", self.split, summary.valid_rows, tokenizer, config,
                                 self.classes, fingerprint=summary.fingerprint)
        return train, valid


def _task(config, classes) -> str:
    return "multilabel" if config.multi_label else "binary" if len(classes) == 2 else "multiclass"


def prepare_streamed(config: TrainConfig, data, valid=None, data_format=None, encoding="utf-8") -> StreamedSplit:
    """Runs the counting pass over ``data`` (and ``valid``) and resolves the settings it decides.

    Args:
        config: Settings as requested.
        data: The training file.
        valid: A validation file, or ``None`` to hold out ``validation_fraction`` of the rows.
        data_format: Format of both files; ``None`` decides from the extensions.
        encoding: Encoding of both files.

    Returns:
        A :class:`StreamedSplit`.
    """
    if valid is not None and not isinstance(valid, (str, os.PathLike)):
        raise ValueError("A streamed run reads its validation data from a file too; got an in-memory Dataset "
                         "for `valid` (pass a file, or streaming='off')")
    source = StreamSource.of(data, config, data_format, encoding)
    valid_source = StreamSource.of(valid, config, data_format, encoding) if valid is not None else None
    split = None if valid_source is not None else RowSplit(config.seed, config.validation_fraction)
    if config.split_mode == "auto":
        # The tokenizer's rules must be known before the counting pass: decide on the first rows.
        first = itertools.islice((text for _, text, _ in source.rows()), SPLIT_MODE_SAMPLE_ROWS)
        config = resolve_split_mode(config, first)
        log(f"split_mode auto: {config.split_mode}, decided on the first {SPLIT_MODE_SAMPLE_ROWS:,} rows (streaming)")
    tokenizer = new_tokenizer(config)
    summary = count_pass(config, tokenizer, source, split, valid_source)
    config = config.replace(max_len=streamed_max_len(config, summary.lengths))
    if summary.dropped_rows:
        shown = ", ".join(f"{name} line {line}" for name, line in summary.dropped_lines)
        log(f"dropped {summary.dropped_rows} rows with empty or missing text or label ({shown}"
            f"{' ...' if summary.dropped_rows > len(summary.dropped_lines) else ''})")
    label, run = summary.longest_run
    if run > SHUFFLE_BUFFER:
        log(f"warning: {run:,} consecutive training rows have the label {label!r}, more than the shuffle buffer "
            f"({SHUFFLE_BUFFER:,} rows): batches will hold mostly one class. Shuffle the file first "
            "(e.g. `shuf`, keeping a CSV header on top), or train with --streaming off")
    classes = summary.classes
    held_out = ("from " + str(valid_source.path) if valid_source is not None
                else f"each row with probability {config.validation_fraction}, not stratified")
    log(f"{summary.train_rows} training rows, {summary.valid_rows} validation rows ({held_out}), "
        f"{len(classes)} labels ({_task(config, classes)}): {', '.join(classes[:10])}")
    return StreamedSplit(source, valid_source, split, summary, tokenizer, config, classes)


def fit_streamed(requested: TrainConfig, prepared: StreamedSplit, verbose="auto", tensorboard=None,
                 checkpoint=None) -> FittedPipeline:
    """``fitting.fit_pipeline`` for streamed data: trains in the loop, reading the file every epoch.

    Args:
        requested: The settings as requested (saved with the checkpoint, compared on resume).
        prepared: The counting pass's result.
        verbose: Progress output of the loop.
        tensorboard: Folder for TensorBoard logs.
        checkpoint: The run's :class:`textclf.train.resume.InProgress`; when it
            holds an interrupted run, its vocabulary and settings are reused.

    Returns:
        A :class:`textclf.train.fit.FittedPipeline` (its ``probabilities`` take texts in memory;
        use :func:`streamed_metrics` for the validation file).
    """
    saved = resumed_setup(checkpoint, requested)
    if saved is not None:
        tokenizer, config = saved
    else:
        tokenizer, config = prepared.tokenizer, prepared.config
    train_rows, valid_rows = prepared.parts(tokenizer, config)
    if saved is None and checkpoint is not None:
        checkpoint.save_setup(requested, config, tokenizer, prepared.classes, train_rows, valid_rows)
    log(f"vocabulary {len(tokenizer.word_index)} words (embedding rows {tokenizer.vocabulary_size}), "
        f"max_len {config.max_len}")
    started = time.perf_counter()
    model, history = fit(config, tokenizer, prepared.classes, train_rows, valid_rows, verbose=verbose,
                         tensorboard=tensorboard, checkpoint=checkpoint)
    # A resumed run counts the time its interrupted part spent up to the checkpoint too.
    earlier = checkpoint.previous_seconds if checkpoint is not None else 0.0
    return FittedPipeline(tokenizer, config, model, history, earlier + time.perf_counter() - started)


def streamed_metrics(model, prepared: StreamedSplit, tokenizer, config: TrainConfig):
    """Validation metrics from the model's outputs on the validation rows, read from the file.

    Returns:
        ``(config, metrics)``: ``config`` with the tuned ``threshold`` for a
        multi-label run that did not fix one; ``metrics`` as ``train`` reports them.
    """
    _, valid_rows = prepared.parts(tokenizer, config)
    truths, outputs = streamed_predictions(model, valid_rows)
    if not config.multi_label:
        return config, classification_metrics_of_indices(truths, outputs, prepared.classes)
    if config.threshold is None:
        config = config.replace(threshold=tune_threshold(outputs, truths))
        log(f"threshold {config.threshold} (best validation micro-F1)")
    return config, multilabel_metrics(truths, outputs, prepared.classes, config.threshold)
