"""``validation_predictions.jsonl`` of a run folder: every validation row with its labels and scores.

One JSON object per validation row, in the rows' order.  Single-label: ``{"text", "true", "predicted", "scores"}``
(``scores``: ``{class: probability}`` of the model, the blend where there is a wide branch), and with a wide branch
``recurrent_scores`` and ``tfidf_scores``, each part alone (:mod:`textclf.training.parts`; the TF-IDF part's are out
of fold).  Multi-label: ``{"text", "true": [labels], "predicted": [labels at the threshold], "scores"}``.

Scores are the float32 probabilities in their shortest exact decimal form, so a part's highest score in the file is
the class it predicted.  Above :data:`MAX_SCORED_CLASSES` classes, each ``scores`` object holds that many highest
and the row's true and predicted classes: every class of every row would be gigabytes for 1,000 classes.
"""

from __future__ import annotations

import itertools
import json

import numpy as np

VALIDATION_PREDICTIONS = "validation_predictions.jsonl"
MAX_SCORED_CLASSES = 20
_BATCH = 1024


def write_validation_predictions(path, fitted, classes, config) -> None:
    """Writes the validation rows of ``fitted`` (:class:`textclf.training.fit.FittedPipeline`) to ``path``, row by
    row; ``config``: the settings used (a multi-label run's tuned ``threshold``)."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in validation_rows(fitted, list(classes), config):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def validation_rows(fitted, classes: list, config):
    """The rows of :func:`write_validation_predictions`, one dictionary each."""
    if fitted.validation_probabilities is not None:
        yield from _blend_rows(fitted, classes)
    else:
        yield from _model_rows(fitted, classes, config)


def _blend_rows(fitted, classes):
    """Rows of a model with a wide branch: the blend's and the parts' scores, computed when the blend was fitted."""
    rows, parts = fitted.valid_rows, fitted.validation_parts
    truths = rows.class_indices()
    scored = {"scores": fitted.validation_probabilities, "recurrent_scores": parts["recurrent"],
              "tfidf_scores": parts["tfidf"]}
    for start in range(0, len(truths), _BATCH):
        batch = slice(start, start + _BATCH)
        yield from _single_label_rows(rows.texts[batch], truths[batch],
                                      {key: values[batch] for key, values in scored.items()}, classes)


def _model_rows(fitted, classes, config):
    """Rows of a model without a wide branch, predicted again batch by batch (memory bounded on streamed rows)."""
    from textclf.model.factory import class_probabilities, compiled_call

    call, rows = compiled_call(fitted.model), fitted.valid_rows
    texts = iter(rows.texts) if hasattr(rows, "texts") else rows.ordered_texts()
    for ids, targets in rows.batches(_BATCH):
        probabilities = np.asarray(class_probabilities(call(ids)), dtype=np.float32)
        targets = targets.numpy()
        batch_texts = list(itertools.islice(texts, len(targets)))
        if config.multi_label:
            yield from _multilabel_rows(batch_texts, targets, probabilities, classes, config.threshold)
        else:
            truths = (targets[:, 0] if targets.ndim == 2 else targets).astype(np.int64)
            yield from _single_label_rows(batch_texts, truths, {"scores": probabilities}, classes)


def _single_label_rows(texts, truths, scored: dict, classes):
    for index, text in enumerate(texts):
        true = int(truths[index])
        row = {"text": text, "true": classes[true], "predicted": classes[int(scored["scores"][index].argmax())]}
        for key, values in scored.items():
            row[key] = scores_of(values[index], classes, [true])
        yield row


def _multilabel_rows(texts, targets, probabilities, classes, threshold: float):
    for text, target, values in zip(texts, targets, probabilities):
        true, predicted = np.flatnonzero(target > 0.5), np.flatnonzero(values >= threshold)
        yield {"text": text, "true": [classes[index] for index in true],
               "predicted": [classes[index] for index in predicted],
               "scores": scores_of(values, classes, np.concatenate([true, predicted]))}


def scores_of(values: np.ndarray, classes: list, kept=()) -> dict:
    """``{class: score}`` in class order: every class, or above :data:`MAX_SCORED_CLASSES` classes the highest
    that many plus the classes ``kept`` and the highest one (a tie at the top may leave it out of the partition)."""
    if len(classes) <= MAX_SCORED_CLASSES:
        columns = np.arange(len(classes))
    else:
        top = np.argpartition(-values, MAX_SCORED_CLASSES - 1)[:MAX_SCORED_CLASSES]
        columns = np.union1d(np.concatenate([top, np.asarray(kept, dtype=np.int64)]), [int(values.argmax())])
    return {classes[column]: exact(values[column]) for column in columns.tolist()}


def exact(value) -> float:
    """A float32 as the shortest decimal that reads back as the same float32 (``0.1``, not ``0.10000000149``)."""
    return float(str(np.float32(value)))
