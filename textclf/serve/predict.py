"""Classifying texts with an export (or a run folder), and evaluating on labelled data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from textclf.serve.artifacts import (EXPORT_METADATA, check_class_count, check_weights, load_export_metadata,
                                     load_run, resolve_export)
from textclf.data.dataset import load_dataset
from textclf.data.fingerprints import trained_rows
from textclf.config import TrainConfig
from textclf.evaluation.metrics import classification_metrics, confused_pairs
from textclf.evaluation.mistakes import check_mistakes, labels_and_scores, most_confident_mistakes
from textclf.data.labels import label_sets, multi_hot
from textclf.evaluation.multilabel import multilabel_metrics
from textclf.text.sequences import encode
from textclf.errors import TextclfError
from textclf.log import log


@dataclasses.dataclass
class Prediction:
    """One text's most probable ``label``, its ``score`` and every label's ``scores`` (in class order).

    ``labels``: for multi-label models, every label whose probability reaches the threshold.
    """

    text: str
    label: str
    score: float
    scores: dict
    labels: list | None = None

    def top_k(self, k: int) -> list[dict]:
        """The ``k`` most probable labels as ``[{"label", "score"}]``, best first."""
        ranked = sorted(self.scores.items(), key=lambda item: item[1], reverse=True)[:k]
        return [{"label": label, "score": score} for label, score in ranked]


class _Classifier:
    """Shared ``predict`` on top of a ``probabilities(texts)`` method."""

    classes: list[str]
    config: TrainConfig

    @property
    def threshold(self) -> float | None:
        """The multi-label threshold (settable, e.g. ``classifier.threshold = 0.3``); ``None`` for single-label."""
        return getattr(self, "_threshold", self.config.threshold if self.config.multi_label else None)

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self._threshold = value

    def probabilities(self, texts) -> np.ndarray:
        raise NotImplementedError

    def predict(self, texts, batch_size: int = 1024) -> list[Prediction]:
        """Predictions for ``texts`` (a string or a list of strings)."""
        texts = _checked_texts(texts, batch_size)
        results = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            probabilities = self.probabilities(chunk)
            for text, row in zip(chunk, probabilities):
                best = int(np.argmax(row))
                results.append(Prediction(
                    text=text, label=self.classes[best], score=float(row[best]),
                    scores={name: float(value) for name, value in zip(self.classes, row)},
                    labels=None if self.threshold is None else
                    [name for name, value in zip(self.classes, row) if value >= self.threshold],
                ))
        return results

    def labels(self, texts, batch_size: int = 1024) -> list[str]:
        """The most probable label of each text, as :meth:`predict` gives it, without its every-class ``scores``:
        those are a Python float per text and class (2.3 GB for 25,000 texts of 1,000 classes)."""
        texts = _checked_texts(texts, batch_size)
        return [self.classes[index] for start in range(0, len(texts), batch_size)
                for index in np.argmax(self.probabilities(texts[start : start + batch_size]), axis=1)]


def _checked_texts(texts, batch_size) -> list[str]:
    """``texts`` (a string or strings) as a list, refusing a non-string or a ``batch_size`` that is no positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise TextclfError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TextclfError(f"`texts` must be strings. Received: texts[{position}]={text!r}")
    return texts


class ExportedClassifier(_Classifier):
    """An exported SavedModel, called through its ``serving_default`` signature (tokenization in the graph).

    It runs as TF Serving does: loaded with ``TF_LoadSessionFromSavedModel`` and run with ``TF_SessionRun``
    (:class:`textclf.serve.session.ServingSession`), with the signatures' tensor names from the export's metadata, so
    TensorFlow's Python package is never imported (7-10 s of a short ``textclf predict``, docs/PERFORMANCE.md).
    Exports without those names (made before they were recorded, or where the C API library is missing) load
    with ``tf.saved_model.load``.
    """

    def __init__(self, path):
        from textclf.serve.session import CApiUnavailable, ServingSession

        self.path = resolve_export(path)
        check_weights(self.path)
        self.metadata, classes, self.config, signatures = load_export_metadata(self.path)
        self.classes = list(classes)
        self._session = self._loaded = None
        try:
            if signatures is not None:
                try:
                    self._session = ServingSession(self.path, signatures)
                except CApiUnavailable:
                    pass
            if self._session is None:
                import tensorflow as tf

                self._loaded = tf.saved_model.load(str(self.path))
        except Exception as error:  # noqa: BLE001 - a damaged export (truncated or empty file) is bad input.
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise TextclfError(f"{self.path} cannot be loaded as a SavedModel (damaged or incomplete: {detail}); "
                             "export the run again with `textclf export RUN --output BASE`") from None
        self._check_metadata_fits()

    def _check_metadata_fits(self) -> None:
        """Refuses a ``textclf.json`` the graph does not match: tensors it lacks, more or fewer classes than scores."""
        from textclf.serve.session import ServingError

        metadata = self.path / EXPORT_METADATA
        missing = self._session.missing_tensors() if self._session is not None else []
        if missing:
            raise TextclfError(f"`signatures` in {metadata} names tensors the SavedModel's graph does not have: "
                               f"{', '.join(missing)}; export the run again with `textclf export RUN --output BASE`")
        try:
            # On no text: the graph's class count at the cost of an empty batch (predict reuses the same fetch).
            scores = self._run("serving_default", [], "scores")
        except ServingError as error:
            raise TextclfError(f"{self.path} does not run ({error}); export the run again with "
                               "`textclf export RUN --output BASE`") from None
        if scores.ndim != 2 or scores.dtype.kind != "f":
            raise TextclfError(f"`signatures.serving_default` in {metadata} must name as `scores` the [batch, classes] "
                               f"probabilities. Received: a {scores.dtype} tensor of shape {list(scores.shape)}")
        check_class_count(metadata, self.classes, scores.shape[1])

    def _run(self, signature: str, texts, key: str) -> np.ndarray:
        if self._session is not None:
            # Only the output needed: the label and class-name strings would each cross ctypes.
            return self._session.run(signature, texts, keys=[key])[key]
        import tensorflow as tf

        return self._loaded.signatures[signature](text=tf.constant(texts, dtype=tf.string))[key].numpy()

    def probabilities(self, texts) -> np.ndarray:
        return self._run("serving_default", texts, "scores")

    def has_signature(self, name: str) -> bool:
        """Whether the export has signature ``name`` (older exports lack ``explain``)."""
        return name in (self._session.signatures if self._session is not None else self._loaded.signatures)

    def run_signature(self, name: str, texts) -> dict[str, np.ndarray]:
        """Every output of signature ``name`` on ``texts`` (strings as ``bytes``), as TF Serving computes it."""
        if self._session is not None:
            return self._session.run(name, texts)
        import tensorflow as tf

        outputs = self._loaded.signatures[name](text=tf.constant(list(texts), dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    def tokenize(self, texts) -> np.ndarray:
        """The int32 ids the exported graph feeds its model."""
        return self._run("tokenize", texts, "ids")


class RunClassifier(_Classifier):
    """A run folder: the Python tokenizer, padding and the Keras model (the pipeline the export is checked against)."""

    def __init__(self, path):
        self.run = load_run(path)
        self.path = self.run.path
        self.classes = list(self.run.classes)
        self.config = self.run.config

    def tokenize(self, texts) -> np.ndarray:
        config = self.run.config
        return encode(self.run.tokenizer, texts, config.max_len, config.padding, config.truncating)

    def probabilities(self, texts) -> np.ndarray:
        from textclf.model.factory import predict_probabilities

        config = self.run.config
        ids = encode(self.run.tokenizer, texts, config.max_len, config.padding, config.truncating, trim=True)
        return predict_probabilities(self.run.model, ids, list(texts))


def load(path):
    """A classifier (``predict(texts)``, ``classes``) for an export base (its highest version), version or run."""
    path = Path(path)
    if (path / "model.keras").is_file() and (path / "config.json").is_file():
        return RunClassifier(path)
    return ExportedClassifier(path)


def evaluate(model, data, text_column: str = "text", label_column: str = "label",
             data_format: str | None = None, encoding: str = "utf-8", mistakes: int | None = None) -> dict:
    """Metrics of a model (a path for :func:`load`, or a loaded classifier) on a labelled file or folder.

    ``data`` is read by :func:`textclf.data.dataset.load_dataset` (``data_format=None``: from the extension).
    Returns ``classification_metrics`` (or ``multilabel_metrics``) plus ``model``, ``data``, ``dropped_rows`` and
    ``trained_rows``: how many rows are texts the model was trained on (``None`` for a model that did not keep
    its training texts' hashes), with a warning when there are any.  With ``mistakes`` (single-label models), also
    ``mistakes``: that many most confident mistakes (:func:`textclf.evaluation.mistakes.most_confident_mistakes`),
    and ``confused_pairs``.
    """
    if mistakes is not None:
        check_mistakes(mistakes)
    classifier = load(model) if isinstance(model, (str, Path)) else model
    # The separator the model was trained with also joins several fastText labels of one line, as in training.
    dataset = load_dataset(data, text_column, label_column, data_format, encoding, classifier.config.label_sep)
    trained = trained_rows(classifier.path, dataset.texts)
    if trained is not None and trained[0]:
        log(f"warning: {'about ' if trained[1] else ''}{trained[0]:,} of {len(dataset):,} rows of {data} are texts the "
            "model was trained on; their scores overstate how it does on texts it has not seen")
    multilabel = classifier.threshold is not None
    sets = label_sets(dataset.labels, classifier.config.label_sep, str(data)) if multilabel else None
    found = {name for names in sets for name in names} if multilabel else set(dataset.labels)
    unknown = sorted(found - set(classifier.classes))
    if unknown:
        raise TextclfError(f"{data}: labels {', '.join(map(repr, unknown))} are not among the model's classes "
                         f"({', '.join(map(repr, classifier.classes))})")
    if multilabel and mistakes is not None:
        raise TextclfError(f"`mistakes` lists the mistakes of single-label models; {classifier.path} is multi-label. "
                           f"Received: mistakes={mistakes}")
    if multilabel:
        metrics = multilabel_metrics(multi_hot(sets, classifier.classes), classifier.probabilities(dataset.texts),
                                     classifier.classes, classifier.threshold)
    elif mistakes is None:
        predicted = classifier.labels(dataset.texts)
        metrics = classification_metrics(dataset.labels, predicted, classifier.classes)
    else:
        predicted, scores = labels_and_scores(classifier, dataset.texts)
        metrics = classification_metrics(dataset.labels, predicted, classifier.classes)
        metrics.update(mistakes=most_confident_mistakes(dataset.texts, dataset.labels, predicted, scores, mistakes,
                                                        dataset.lines), confused_pairs=confused_pairs(metrics))
    metrics.update(model=str(classifier.path), data=str(data), dropped_rows=len(dataset.dropped_lines),
                   trained_rows=trained[0] if trained is not None else None)
    return metrics
