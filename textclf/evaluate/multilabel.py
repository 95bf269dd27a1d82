"""Multi-label tasks: several labels per text, one sigmoid per class, a tuned threshold.

A multi-label row's label field holds its labels separated by ``label_sep``
(``"sport|politics"``; the fastText reader joins several ``__label__`` tags
the same way).  The model scores every class independently; a class is
predicted when its probability reaches the threshold, which is chosen on the
validation set to maximise micro-F1 unless the user fixes it.
"""

from __future__ import annotations

import numpy as np

from textclf.data.dataset import sorted_classes

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def row_labels(label: str, separator: str) -> list[str]:
    """One row's labels: ``label`` split on ``separator``, stripped, without duplicates, in first-seen order.

    Example:
        >>> row_labels("sport| politics|sport", "|")
        ['sport', 'politics']
    """
    return list(dict.fromkeys(part.strip() for part in label.split(separator) if part.strip()))


def label_sets(labels, separator: str, source: str = "data") -> list[list[str]]:
    """Each row's labels (:func:`row_labels`).

    Raises:
        ValueError: naming the first row that has no label after splitting.
    """
    sets = []
    for row, label in enumerate(labels, start=1):
        names = row_labels(label, separator)
        if not names:
            raise ValueError(f"{source}: row {row} has no label after splitting {label!r} on {separator!r}")
        sets.append(names)
    return sets


def classes_of(sets) -> list[str]:
    """Every label that occurs, in textclf's class order."""
    return sorted_classes([name for names in sets for name in names])


def multi_hot(sets, classes) -> np.ndarray:
    """float32 ``[rows, classes]`` with 1 where the row has the class."""
    position = {name: index for index, name in enumerate(classes)}
    targets = np.zeros((len(sets), len(classes)), dtype=np.float32)
    for row, names in enumerate(sets):
        for name in names:
            targets[row, position[name]] = 1.0
    return targets


def tune_threshold(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The threshold of ``THRESHOLD_GRID`` with the best micro-F1 (ties: the one nearest 0.5)."""
    from sklearn.metrics import f1_score

    scored = [(f1_score(targets, probabilities >= threshold, average="micro", zero_division=0), -abs(threshold - 0.5),
               float(threshold)) for threshold in THRESHOLD_GRID]
    return max(scored)[2]


def multilabel_metrics(targets: np.ndarray, probabilities: np.ndarray, classes, threshold: float) -> dict:
    """Micro/macro-F1, subset accuracy and a per-class report.

    ``accuracy`` is the subset accuracy (every label of a row right), so
    reports of all tasks share that key.
    """
    from sklearn.metrics import accuracy_score, classification_report, f1_score, multilabel_confusion_matrix

    predicted = (probabilities >= threshold).astype(int)
    targets = targets.astype(int)
    return {
        "task": "multilabel",
        "threshold": threshold,
        "accuracy": float(accuracy_score(targets, predicted)),
        "subset_accuracy": float(accuracy_score(targets, predicted)),
        "micro_f1": float(f1_score(targets, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
        "support": int(len(targets)),
        "classes": list(classes),
        "report": classification_report(targets, predicted, target_names=list(classes), output_dict=True,
                                        zero_division=0),
        # Per class: [[true negatives, false positives], [false negatives, true positives]].
        "confusion_matrices": multilabel_confusion_matrix(targets, predicted).tolist(),
    }
