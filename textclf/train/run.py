"""Training: data → split → fit → validation metrics → run folder → export.

A run folder holds everything needed to rebuild, export or reuse the run:
``config.json`` (settings actually used, ``max_len`` resolved),
``tokenizer.json``, ``labels.json``, ``history.json``, ``metrics.json``
(validation accuracy, macro-F1, per-class report, confusion matrix),
``run.json`` (data files, row counts, timing), ``history.png``,
``confusion_matrix.png`` and ``model.keras``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np

from textclf.train.resume import InProgress
from textclf.train.cluster import get_strategy, worker_role
from textclf.config import TrainConfig
from textclf.data.dataset import Dataset, load_dataset, sorted_classes, stratified_split
from textclf.train.fit import fit_pipeline, seed_everything
from textclf.log import log
from textclf.evaluate.metrics import classification_metrics, format_metrics
from textclf.evaluate.multilabel import label_sets, multi_hot, multilabel_metrics, tune_threshold
from textclf.evaluate.reports import plot_confusion_matrix, plot_history
from textclf.data.streaming import should_stream


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        run_dir: The run folder (``None`` on a non-chief worker of a
            multi-worker run, which writes nothing).
        metrics: Validation metrics (see :func:`textclf.evaluate.metrics.classification_metrics`).
        history: Per-epoch loss and accuracy, training and validation.
        config: The settings used, ``max_len`` resolved.
        export_dir: The exported SavedModel version, when ``output`` was given.
    """

    run_dir: Path
    metrics: dict
    history: dict
    config: TrainConfig
    export_dir: Path | None = None


def split_data(config: TrainConfig, train_data: Dataset, valid_data: Dataset | None):
    """The training and validation sets: ``valid_data``, or a stratified split."""
    if valid_data is not None:
        return train_data, valid_data
    train_indices, valid_indices = stratified_split(train_data.labels, config.validation_fraction, config.seed)
    return train_data.subset(train_indices), train_data.subset(valid_indices)


def task_of(config: TrainConfig, classes) -> str:
    """``multilabel``, ``binary`` or ``multiclass``."""
    return "multilabel" if config.multi_label else "binary" if len(classes) == 2 else "multiclass"


def check_labels(train_data: Dataset, valid_data: Dataset, config: TrainConfig | None = None) -> list[str]:
    """The classes, refusing a single label or validation labels never trained on."""
    def names(data):
        if config is not None and config.multi_label:
            return [name for names in label_sets(data.labels, config.label_sep, data.path) for name in names]
        return data.labels

    classes = sorted_classes(names(train_data))
    if len(classes) < 2:
        raise ValueError(
            f"{train_data.path}: training needs at least two different labels; found only "
            f"{', '.join(map(repr, classes))}"
        )
    unseen = sorted(set(names(valid_data)) - set(classes))
    if unseen:
        raise ValueError(
            f"{valid_data.path}: labels {', '.join(map(repr, unseen))} do not occur in the training data "
            f"(training labels: {', '.join(map(repr, classes))})"
        )
    return classes


def _new_run_dir(output: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = output / "runs" / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = output / "runs" / f"{stamp}-{suffix}"
    return candidate


def write_run(run_dir: Path, files: dict, model, pictures: dict | None = None) -> Path:
    """Writes the run folder through a temporary folder renamed when complete.

    Args:
        run_dir: The folder to create.
        files: ``{name: text}`` files.
        model: The Keras model, saved as ``model.keras``.
        pictures: ``{name: function(path)}`` writers of image files; one that
            fails is logged as a warning and left out.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.parent / f".tmp-{run_dir.name}-{os.getpid()}"
    staging.mkdir()
    try:
        for name, content in files.items():
            (staging / name).write_text(content, encoding="utf-8")
        model.save(staging / "model.keras")
        for name, draw in (pictures or {}).items():
            # Pictures are optional: a failure (no matplotlib, no fonts, ...) never costs the trained run.
            try:
                draw(staging / name)
            except Exception as error:  # noqa: BLE001 - any drawing failure is only a warning.
                (staging / name).unlink(missing_ok=True)
                log(f"warning: {name} was not drawn ({type(error).__name__}: {error}); the run is saved without it")
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


@dataclasses.dataclass
class Split:
    """The data of a run: what was read, and the training/validation split."""

    all_train: Dataset
    given_valid: Dataset | None
    train: Dataset
    valid: Dataset
    classes: list[str]


def _as_dataset(source, config: TrainConfig, data_format=None, encoding="utf-8") -> Dataset | None:
    if source is None or isinstance(source, Dataset):
        return source
    loaded = load_dataset(source, config.text_column, config.label_column, data_format, encoding, config.label_sep)
    if loaded.dropped_files:
        shown = ", ".join(loaded.dropped_files[:10]) + (" ..." if len(loaded.dropped_files) > 10 else "")
        log(f"{source}: dropped {len(loaded.dropped_files)} empty files ({shown})")
    if loaded.dropped_lines:
        shown = ", ".join(map(str, loaded.dropped_lines[:10])) + (" ..." if len(loaded.dropped_lines) > 10 else "")
        log(f"{source}: dropped {len(loaded.dropped_lines)} rows with empty or missing text or label (lines {shown})")
    return loaded


def prepare_split(config: TrainConfig, data, valid=None, data_format=None, encoding="utf-8") -> Split:
    """Reads the data and makes the split every command uses for these settings.

    ``train`` and ``baseline`` both call this, so the TF-IDF baseline is
    scored on exactly the rows the model is validated on.  ``data_format`` and
    ``encoding`` apply to both files (see :func:`textclf.data.dataset.load_dataset`).
    """
    all_train = _as_dataset(data, config, data_format, encoding)
    given_valid = _as_dataset(valid, config, data_format, encoding)
    classes = check_labels(all_train, given_valid if given_valid is not None else all_train, config)
    train_data, valid_data = split_data(config, all_train, given_valid)
    log(f"{len(train_data)} training rows, {len(valid_data)} validation rows, "
        f"{len(classes)} labels ({task_of(config, classes)}): {', '.join(classes[:10])}")
    return Split(all_train, given_valid, train_data, valid_data, classes)


def train(
    data,
    config: TrainConfig | None = None,
    valid=None,
    output=None,
    run_dir=None,
    verbose="auto",
    tensorboard=None,
    data_format=None,
    encoding="utf-8",
    restart=False,
) -> TrainResult:
    """Trains a classifier and, when ``output`` is given, exports it for TF Serving.

    Args:
        data: Training file or folder (any format :func:`textclf.data.dataset.load_dataset`
            reads) or a :class:`Dataset`.
        config: Settings; defaults to ``TrainConfig()``.
        valid: Validation file or :class:`Dataset`; ``None`` holds out a
            stratified ``config.validation_fraction`` of ``data``.
        output: Export base folder (``saved_models/NAME``); the run folder
            goes to ``output/runs/<timestamp>`` unless ``run_dir`` is given.
        run_dir: Where to write the run folder (must not exist).
        verbose: 0 silences the per-epoch log lines; 1 (or "auto" on a terminal) adds a progress bar.
        tensorboard: Folder for TensorBoard logs (``tensorboard --logdir DIR``).
        data_format: Format of ``data`` and ``valid`` files; ``None`` decides from the extension.
        encoding: Encoding of ``data`` and ``valid`` text files.
        restart: Discard the checkpoint of an interrupted run instead of
            resuming it.  Every run checkpoints into ``.in-progress`` beside
            the run folders (see :mod:`textclf.train.resume`) at epoch ends
            (and every ``config.checkpoint_every`` steps); a rerun with the
            same settings and data resumes from the last checkpoint.

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = train("data/rt_polarity.csv", TrainConfig(epochs=2), output="saved_models/rt_polarity")
        >>> result.metrics["macro_f1"]
    """
    config = config or TrainConfig()
    if valid is None and config.validation_fraction == 0:
        # Early stopping, the best weights and the metrics all need validation rows.
        raise ValueError("`validation_fraction` must be > 0 when no validation file is given (early stopping and "
                         "the metrics need validation rows). Received: validation_fraction=0.0; pass a fraction "
                         "such as 0.2, or --valid FILE")
    if output is None and run_dir is None:
        raise ValueError("Give `output` (export base folder) or `run_dir` (run folder). Received neither")
    run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(Path(output))
    if run_dir.exists():
        raise ValueError(f"Run folder {run_dir} already exists; choose another (runs are never overwritten)")

    # Distributed runs: the strategy must exist before any other TensorFlow op,
    # and only the chief writes files (textclf.train.cluster).
    role = worker_role(config.strategy)
    get_strategy(config.strategy)
    seed_everything(config.seed)
    config = _resolve_streaming(config, data, data_format, run_dir.parent, restart)
    if config.streaming == "on":
        return _train_streamed(data, config, valid, output, run_dir, verbose, tensorboard, data_format, encoding,
                               restart, role)
    split = prepare_split(config, data, valid, data_format, encoding)

    # Every run checkpoints (at epoch ends, and every `checkpoint_every` steps)
    # and trains in textclf.train.loop's loop, which can resume mid-epoch
    # exactly; keras.callbacks.BackupAndRestore cannot (see that module).
    progress = InProgress.open(run_dir.parent, config, split.train, split.valid, role, restart=restart)
    try:
        return _fit_and_finish(progress, config, split, run_dir, output, role, verbose, tensorboard)
    except BaseException:
        progress.close()  # Releases the lock; keeps the checkpoint for the next run to resume from.
        raise


def _resolve_streaming(config: TrainConfig, data, data_format, runs_dir, restart: bool) -> TrainConfig:
    """``streaming`` "auto" made "on" or "off": the interrupted run's decision when resuming one, else decided now."""
    if config.streaming != "auto":
        should_stream(config, data, data_format, log)  # Refuses "on" for data that cannot be streamed.
        return config
    saved = None if restart else InProgress.interrupted_setting(runs_dir, "streaming")
    if saved in ("on", "off"):
        log(f"streaming auto: {saved}, as in the interrupted run being resumed")
        return config.replace(streaming=saved)
    return config.replace(streaming="on" if should_stream(config, data, data_format, log) else "off")


def _fit_and_finish(progress, config, split, run_dir, output, role, verbose, tensorboard) -> TrainResult:
    """In-memory training after the split: fit, validation metrics, run folder, export."""
    all_train, given_valid, train_data, valid_data, classes = (
        split.all_train, split.given_valid, split.train, split.valid, split.classes)
    fitted = fit_pipeline(config, train_data, valid_data, classes, verbose=verbose, tensorboard=tensorboard,
                          checkpoint=progress)
    config = fitted.config

    probabilities = fitted.probabilities(valid_data.texts)
    if config.multi_label:
        targets = multi_hot(label_sets(valid_data.labels, config.label_sep), classes)
        if config.threshold is None:
            config = config.replace(threshold=tune_threshold(probabilities, targets))
            log(f"threshold {config.threshold} (best validation micro-F1)")
        metrics = multilabel_metrics(targets, probabilities, classes, config.threshold)
    else:
        predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
        metrics = classification_metrics(valid_data.labels, predicted.tolist(), classes)
    run_info = {
        "train_file": all_train.path,
        "valid_file": given_valid.path if given_valid is not None else None,
        "train_rows": len(train_data),
        "valid_rows": len(valid_data),
        "dropped_rows": len(all_train.dropped_lines) + (len(given_valid.dropped_lines) if given_valid else 0),
    }
    return _finish_run(run_dir, output, role, progress, fitted, config, classes, metrics, run_info)


def _train_streamed(data, config, valid, output, run_dir, verbose, tensorboard, data_format, encoding, restart,
                    role) -> TrainResult:
    """:func:`train` for a file streamed from disk (see :mod:`textclf.train.streamed`)."""
    from textclf.train.streamed import fit_streamed, prepare_streamed, streamed_metrics

    if role.is_chief:
        InProgress.refuse_if_busy(run_dir.parent)  # Before the counting pass, which may take minutes.
    prepared = prepare_streamed(config, data, valid, data_format, encoding)
    train_rows, valid_rows = prepared.parts()
    progress = InProgress.open(run_dir.parent, config, train_rows, valid_rows, role, restart=restart)
    try:
        fitted = fit_streamed(config, prepared, verbose=verbose, tensorboard=tensorboard, checkpoint=progress)
        config, metrics = streamed_metrics(fitted.model, prepared, fitted.tokenizer, fitted.config)
        summary = prepared.summary
        run_info = {
            "train_file": str(prepared.source.path),
            "valid_file": str(prepared.valid_source.path) if prepared.valid_source is not None else None,
            "train_rows": summary.train_rows,
            "valid_rows": summary.valid_rows,
            "dropped_rows": summary.dropped_rows,
            "streaming": True,
        }
        return _finish_run(run_dir, output, role, progress, fitted, config, prepared.classes, metrics, run_info)
    except BaseException:
        progress.close()  # Releases the lock; keeps the checkpoint for the next run to resume from.
        raise


def _finish_run(run_dir, output, role, progress, fitted, config, classes, metrics, run_info) -> TrainResult:
    """Logs the metrics, writes the run folder (the chief only), completes the checkpoint, exports."""
    tokenizer, model, history, training_seconds = (
        fitted.tokenizer, fitted.model, fitted.history, fitted.training_seconds)
    log("validation\n" + format_metrics(metrics))
    if not role.is_chief:
        progress.close()
        return TrainResult(run_dir=None, metrics=metrics, history=history, config=config)

    run_info = {**run_info, "epochs_run": len(history.get("loss", [])),
                "training_seconds": round(training_seconds, 2)}
    write_run(run_dir, {
        "config.json": json.dumps(config.to_dict(), indent=2, ensure_ascii=False),
        "tokenizer.json": tokenizer.to_json(ensure_ascii=False),
        "labels.json": json.dumps({"classes": classes, "task": task_of(config, classes)}, indent=2, ensure_ascii=False),
        "history.json": json.dumps(history, indent=2),
        "metrics.json": json.dumps(metrics, indent=2, ensure_ascii=False),
        "run.json": json.dumps(run_info, indent=2, ensure_ascii=False),
    }, model, pictures={
        "history.png": lambda path: plot_history(history, path),
        **({} if config.multi_label else {
            "confusion_matrix.png": lambda path: plot_confusion_matrix(metrics["confusion_matrix"], classes, path)}),
    })
    progress.complete()  # The run folder now holds the result: nothing left to resume.
    log(f"run saved to {run_dir} ({training_seconds:.1f} s of training)")
    result = TrainResult(run_dir=run_dir, metrics=metrics, history=history, config=config)
    if output is not None:
        from textclf.serve.export import export_run

        result.export_dir = export_run(run_dir, output)
        log(f"exported to {result.export_dir}")
    return result
