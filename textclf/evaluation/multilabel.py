"""Scoring multi-label tasks: a class is predicted when its sigmoid reaches the threshold.

The threshold maximises micro-F1 on the validation rows unless the user fixes it.  Reading the label sets is
:mod:`textclf.data.labels`'s.
"""

from __future__ import annotations

import numpy as np

from textclf.evaluation.metrics import per_class

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def tune_threshold(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The threshold of ``THRESHOLD_GRID`` with the best micro-F1 (ties: the one nearest 0.5)."""
    from sklearn.metrics import f1_score

    scored = [(f1_score(targets, probabilities >= threshold, average="micro", zero_division=0), -abs(threshold - 0.5),
               float(threshold)) for threshold in THRESHOLD_GRID]
    return max(scored)[2]


def multilabel_metrics(targets: np.ndarray, probabilities: np.ndarray, classes, threshold: float) -> dict:
    """Micro/macro-F1, subset accuracy (also as ``accuracy``, the key reports of all tasks share), per-class report."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score, multilabel_confusion_matrix

    predicted = (probabilities >= threshold).astype(int)
    targets = targets.astype(int)
    accuracy = float(accuracy_score(targets, predicted))
    return {
        "task": "multilabel",
        "threshold": threshold,
        "accuracy": accuracy,
        "subset_accuracy": accuracy,
        "micro_f1": float(f1_score(targets, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
        "support": int(len(targets)),
        "classes": list(classes),
        "per_class": per_class(targets, predicted, None, list(classes)),
        "report": classification_report(targets, predicted, target_names=list(classes), output_dict=True,
                                        zero_division=0),
        # Per class: [[true negatives, false positives], [false negatives, true positives]].
        "confusion_matrices": multilabel_confusion_matrix(targets, predicted).tolist(),
    }
