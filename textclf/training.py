"""Training: data → tokenizer → model → fit → validation metrics → run folder.

A run folder holds everything needed to rebuild, export or reuse the run:
``config.json`` (settings actually used, ``max_len`` resolved),
``tokenizer.json``, ``labels.json``, ``history.json``, ``metrics.json``
(validation accuracy, macro-F1, per-class report, confusion matrix),
``run.json`` (data files, row counts, timing) and ``model.keras``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from textclf.config import TrainConfig
from textclf.data import Dataset, load_dataset, sorted_classes, stratified_split
from textclf.inputs import EncodedTexts, dense_dataset, make_dataset
from textclf.metrics import classification_metrics, format_metrics
from textclf.model import build_model, class_probabilities
from textclf.reports import plot_confusion_matrix, plot_history
from textclf.sequences import encode
from textclf.text import cjk_share
from textclf.tokenizer import Tokenizer

RUN_FILES = ("config.json", "tokenizer.json", "labels.json", "model.keras")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        run_dir: The run folder.
        metrics: Validation metrics (see :func:`textclf.metrics.classification_metrics`).
        history: Per-epoch loss and accuracy, training and validation.
        config: The settings used, ``max_len`` resolved.
        export_dir: The exported SavedModel version, when ``output`` was given.
    """

    run_dir: Path
    metrics: dict
    history: dict
    config: TrainConfig
    export_dir: Path | None = None


def log(message: str) -> None:
    """Progress messages go to standard error, keeping standard output for results."""
    print(message, file=sys.stderr, flush=True)


def resolve_max_len(config: TrainConfig, sequences) -> int:
    """``config.max_len``, or the configured percentile of sequence lengths."""
    if config.max_len is not None:
        return config.max_len
    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64)
    chosen = int(math.ceil(np.percentile(lengths, config.max_len_percentile))) if len(lengths) else 1
    return int(min(max(chosen, 1), config.max_len_limit))


def split_data(config: TrainConfig, train_data: Dataset, valid_data: Dataset | None):
    """The training and validation sets: ``valid_data``, or a stratified split."""
    if valid_data is not None:
        return train_data, valid_data
    train_indices, valid_indices = stratified_split(train_data.labels, config.validation_fraction, config.seed)
    return train_data.subset(train_indices), train_data.subset(valid_indices)


def check_labels(train_data: Dataset, valid_data: Dataset) -> list[str]:
    """The classes, refusing a single label or validation labels never trained on."""
    classes = sorted_classes(train_data.labels)
    if len(classes) < 2:
        raise ValueError(
            f"{train_data.path}: training needs at least two different labels; found only "
            f"{', '.join(map(repr, classes))}"
        )
    unseen = sorted(set(valid_data.labels) - set(classes))
    if unseen:
        raise ValueError(
            f"{valid_data.path}: labels {', '.join(map(repr, unseen))} do not occur in the training data "
            f"(training labels: {', '.join(map(repr, classes))})"
        )
    return classes


def _targets(labels, classes):
    positions = {label: index for index, label in enumerate(classes)}
    indices = np.array([positions[label] for label in labels], dtype=np.int32)
    # The binary head is one sigmoid unit: its target is a float column.
    return indices.astype("float32")[:, None] if len(classes) == 2 else indices


def class_weights(labels, classes) -> dict[int, float]:
    """``{class index: weight}`` with weights inversely proportional to class frequency.

    scikit-learn's "balanced" rule: ``rows / (classes * rows of the class)``.
    """
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.asarray(classes), y=np.asarray(labels))
    return {index: float(weight) for index, weight in enumerate(weights)}


def datasets(config: TrainConfig, tokenizer: Tokenizer, classes, train_data: Dataset, valid_data: Dataset):
    """``(train, valid)`` tf.data pipelines; the training one shuffles with the run's seed.

    Post-padding (the default) is tokenized once into flat arrays and batched
    by length (see ``textclf.inputs``); pre-padding keeps fixed-length rows.
    """
    train_targets, valid_targets = _targets(train_data.labels, classes), _targets(valid_data.labels, classes)
    if config.padding == "pre":
        return (dense_dataset(tokenizer, train_data.texts, train_targets, config, shuffle_seed=config.seed),
                dense_dataset(tokenizer, valid_data.texts, valid_targets, config))
    train_encoded = EncodedTexts.from_texts(tokenizer, train_data.texts, config.max_len, config.truncating)
    valid_encoded = EncodedTexts.from_texts(tokenizer, valid_data.texts, config.max_len, config.truncating)
    return (make_dataset(train_encoded, train_targets, config.batch_size, config.seed, bucket=config.bucketing),
            make_dataset(valid_encoded, valid_targets, config.batch_size, bucket=False))


def fit(config: TrainConfig, tokenizer: Tokenizer, classes, train_data: Dataset, valid_data: Dataset, verbose="auto",
        tensorboard=None, callbacks=None):
    """Builds, compiles and fits the model.

    Returns:
        ``(model, history)`` where ``model`` has the weights of the epoch
        with the lowest validation loss.
    """
    import keras

    train_batches, valid_batches = datasets(config, tokenizer, classes, train_data, valid_data)
    model = build_model(config, tokenizer.vocabulary_size, len(classes))
    if config.embeddings:
        from textclf.embeddings import load_embeddings

        vectors = load_embeddings(config.embeddings, tokenizer, tokenizer.vocabulary_size, config.embedding_dim,
                                  seed=config.seed)
        model.get_layer("embedding").set_weights([vectors.matrix])
        log(f"{config.embeddings}: vectors for {vectors.found} of {vectors.total} vocabulary words "
            f"({vectors.coverage:.1%} coverage){', frozen' if config.freeze_embeddings else ''}")
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch)
    binary = len(classes) == 2
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=config.clipnorm),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = list(callbacks or []) + [keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1)]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard)))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, verbose=1))
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


def predict_probabilities(model, ids, batch_size=1024) -> np.ndarray:
    """``[rows, num_classes]`` probabilities, computed batch by batch with direct calls."""
    outputs = [
        np.asarray(class_probabilities(model(ids[start : start + batch_size], training=False)))
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
        ids = encode(self.tokenizer, texts, self.config.max_len, self.config.padding, self.config.truncating)
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


def fit_pipeline(config: TrainConfig, train_data: Dataset, valid_data: Dataset, classes, verbose="auto",
                 tensorboard=None, callbacks=None) -> FittedPipeline:
    """Fits the tokenizer on the training texts, resolves ``max_len``, trains the model.  No file output."""
    config = resolve_split_mode(config, train_data.texts)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(train_data.texts)
    config = config.replace(max_len=resolve_max_len(config, tokenizer.texts_to_sequences_generator(train_data.texts)))
    log(f"vocabulary {len(tokenizer.word_index)} words (embedding rows {tokenizer.vocabulary_size}), max_len {config.max_len}")
    started = time.perf_counter()
    model, history = fit(config, tokenizer, classes, train_data, valid_data, verbose=verbose,
                         tensorboard=tensorboard, callbacks=callbacks)
    return FittedPipeline(tokenizer, config, model, history, time.perf_counter() - started)


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
        pictures: ``{name: function(path)}`` writers of image files.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.parent / f".tmp-{run_dir.name}-{os.getpid()}"
    staging.mkdir()
    try:
        for name, content in files.items():
            (staging / name).write_text(content, encoding="utf-8")
        for name, draw in (pictures or {}).items():
            draw(staging / name)
        model.save(staging / "model.keras")
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass
class Split:
    """The data of a run: what was read, and the training/validation split."""

    all_train: Dataset
    given_valid: Dataset | None
    train: Dataset
    valid: Dataset
    classes: list[str]


def _as_dataset(source, config: TrainConfig) -> Dataset | None:
    if source is None or isinstance(source, Dataset):
        return source
    loaded = load_dataset(source, config.text_column, config.label_column)
    if loaded.dropped_lines:
        shown = ", ".join(map(str, loaded.dropped_lines[:10])) + (" ..." if len(loaded.dropped_lines) > 10 else "")
        log(f"{source}: dropped {len(loaded.dropped_lines)} rows with empty or missing text or label (lines {shown})")
    return loaded


def prepare_split(config: TrainConfig, data, valid=None) -> Split:
    """Reads the data and makes the split every command uses for these settings.

    ``train`` and ``baseline`` both call this, so the TF-IDF baseline is
    scored on exactly the rows the model is validated on.
    """
    all_train, given_valid = _as_dataset(data, config), _as_dataset(valid, config)
    classes = check_labels(all_train, given_valid if given_valid is not None else all_train)
    train_data, valid_data = split_data(config, all_train, given_valid)
    log(f"{len(train_data)} training rows, {len(valid_data)} validation rows, "
        f"{len(classes)} labels ({'binary' if len(classes) == 2 else 'multiclass'}): {', '.join(classes[:10])}")
    return Split(all_train, given_valid, train_data, valid_data, classes)


def train(
    data,
    config: TrainConfig | None = None,
    valid=None,
    output=None,
    run_dir=None,
    verbose="auto",
    tensorboard=None,
) -> TrainResult:
    """Trains a classifier and, when ``output`` is given, exports it for TF Serving.

    Args:
        data: Training file path (CSV, TSV, JSONL) or a :class:`Dataset`.
        config: Settings; defaults to ``TrainConfig()``.
        valid: Validation file or :class:`Dataset`; ``None`` holds out a
            stratified ``config.validation_fraction`` of ``data``.
        output: Export base folder (``saved_models/NAME``); the run folder
            goes to ``output/runs/<timestamp>`` unless ``run_dir`` is given.
        run_dir: Where to write the run folder (must not exist).
        verbose: Keras ``fit`` verbosity.
        tensorboard: Folder for TensorBoard logs (``tensorboard --logdir DIR``).

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = train("data/rt_polarity.csv", TrainConfig(epochs=2), output="saved_models/rt_polarity")
        >>> result.metrics["macro_f1"]
    """
    config = config or TrainConfig()
    if output is None and run_dir is None:
        raise ValueError("Give `output` (export base folder) or `run_dir` (run folder). Received neither")
    run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(Path(output))
    if run_dir.exists():
        raise ValueError(f"Run folder {run_dir} already exists; choose another (runs are never overwritten)")

    seed_everything(config.seed)
    split = prepare_split(config, data, valid)
    all_train, given_valid, train_data, valid_data, classes = (
        split.all_train, split.given_valid, split.train, split.valid, split.classes)

    fitted = fit_pipeline(config, train_data, valid_data, classes, verbose=verbose, tensorboard=tensorboard)
    tokenizer, config, model, history, training_seconds = (
        fitted.tokenizer, fitted.config, fitted.model, fitted.history, fitted.training_seconds)

    predicted = np.asarray(classes)[fitted.probabilities(valid_data.texts).argmax(axis=1)]
    metrics = classification_metrics(valid_data.labels, predicted.tolist(), classes)
    log("validation\n" + format_metrics(metrics))

    run_info = {
        "train_file": all_train.path,
        "valid_file": given_valid.path if given_valid is not None else None,
        "train_rows": len(train_data),
        "valid_rows": len(valid_data),
        "dropped_rows": len(all_train.dropped_lines) + (len(given_valid.dropped_lines) if given_valid else 0),
        "epochs_run": len(history.get("loss", [])),
        "training_seconds": round(training_seconds, 2),
    }
    write_run(run_dir, {
        "config.json": json.dumps(config.to_dict(), indent=2, ensure_ascii=False),
        "tokenizer.json": tokenizer.to_json(ensure_ascii=False),
        "labels.json": json.dumps({"classes": classes, "task": "binary" if len(classes) == 2 else "multiclass"},
                                  indent=2, ensure_ascii=False),
        "history.json": json.dumps(history, indent=2),
        "metrics.json": json.dumps(metrics, indent=2, ensure_ascii=False),
        "run.json": json.dumps(run_info, indent=2, ensure_ascii=False),
    }, model, pictures={
        "history.png": lambda path: plot_history(history, path),
        "confusion_matrix.png": lambda path: plot_confusion_matrix(metrics["confusion_matrix"], classes, path),
    })
    log(f"run saved to {run_dir} ({training_seconds:.1f} s of training)")
    result = TrainResult(run_dir=run_dir, metrics=metrics, history=history, config=config)
    if output is not None:
        from textclf.export import export_run

        result.export_dir = export_run(run_dir, output)
        log(f"exported to {result.export_dir}")
    return result
