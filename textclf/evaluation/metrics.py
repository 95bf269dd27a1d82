"""Classification metrics with scikit-learn, as JSON-ready dictionaries."""

from __future__ import annotations

import numpy as np


def _occurring(classes, true_labels, predicted_labels) -> list:
    """The classes macro-F1 averages over: those with a true or a predicted row.

    A class with neither (no validation row, never predicted) has no F1 to
    speak of; counting it as 0 would lower macro-F1 for a class that was
    never tested (scikit-learn's own default when ``labels`` is not given).
    """
    seen = set(true_labels) | set(predicted_labels)
    return [name for name in classes if name in seen]


def classification_metrics(true_labels, predicted_labels, classes) -> dict:
    """Accuracy, macro-F1, per-class report and confusion matrix.

    Args:
        true_labels: Label strings.
        predicted_labels: Label strings, one per true label.
        classes: Every label in display order (rows/columns of the matrix).

    Returns:
        ``{"accuracy", "macro_f1", "support", "classes", "report", "confusion_matrix"}``
        where ``report`` is scikit-learn's ``classification_report`` as a
        dictionary and ``confusion_matrix[i][j]`` counts class ``i`` predicted as ``j``.

    Example:
        >>> classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])["accuracy"]
        0.5
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    classes = list(classes)
    true_labels = list(true_labels)
    predicted_labels = list(predicted_labels)
    return {
        "accuracy": float(accuracy_score(true_labels, predicted_labels)),
        "macro_f1": float(f1_score(true_labels, predicted_labels,
                                   labels=_occurring(classes, true_labels, predicted_labels),
                                   average="macro", zero_division=0)),
        "support": len(true_labels),
        "classes": classes,
        "report": classification_report(
            true_labels, predicted_labels, labels=classes, output_dict=True, zero_division=0
        ),
        "confusion_matrix": confusion_matrix(true_labels, predicted_labels, labels=classes).tolist(),
    }


def classification_metrics_of_indices(true_indices, predicted_indices, classes) -> dict:
    """:func:`classification_metrics` from class indices instead of label strings.

    The same dictionary, without a Python string per row: streamed
    validation (``textclf.training.streamed_rows``) keeps only two int32 arrays.

    Args:
        true_indices: Index into ``classes`` of each row's true label.
        predicted_indices: Index of each row's predicted label.
        classes: Every label in display order.

    Example:
        >>> classification_metrics_of_indices([0, 1], [0, 0], ["a", "b"])["accuracy"]
        0.5
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    classes = list(classes)
    positions = list(range(len(classes)))
    true_indices, predicted_indices = np.asarray(true_indices), np.asarray(predicted_indices)
    return {
        "accuracy": float(accuracy_score(true_indices, predicted_indices)),
        "macro_f1": float(f1_score(true_indices, predicted_indices,
                                   labels=_occurring(positions, true_indices.tolist(), predicted_indices.tolist()),
                                   average="macro", zero_division=0)),
        "support": len(true_indices),
        "classes": classes,
        "report": classification_report(true_indices, predicted_indices, labels=positions, target_names=classes,
                                        output_dict=True, zero_division=0),
        "confusion_matrix": confusion_matrix(true_indices, predicted_indices, labels=positions).tolist(),
    }


def format_metrics(metrics: dict) -> str:
    """Human-readable text of :func:`classification_metrics` output."""
    classes = metrics["classes"]
    multilabel = metrics.get("task") == "multilabel"
    lines = [
        f"{'subset accuracy' if multilabel else 'accuracy':<16}{metrics['accuracy']:.4f}",
        *([f"{'micro-F1':<16}{metrics['micro_f1']:.4f}", f"{'threshold':<16}{metrics['threshold']}"] if multilabel else []),
        f"{'macro-F1':<16}{metrics['macro_f1']:.4f}",
        f"{'rows':<16}{metrics['support']}",
        "",
        f"{'class':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for name in classes:
        row = metrics["report"][name]
        lines.append(
            f"{name[:23]:<24}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1-score']:>10.3f}{int(row['support']):>10}"
        )
    if multilabel:
        return "\n".join(lines)
    width = max(7, *(len(name[:12]) for name in classes)) + 1
    lines += ["", "confusion matrix (rows: true, columns: predicted)", " " * 14 + "".join(f"{n[:12]:>{width}}" for n in classes)]
    for name, row in zip(classes, np.asarray(metrics["confusion_matrix"])):
        lines.append(f"{name[:13]:<14}" + "".join(f"{count:>{width}}" for count in row))
    return "\n".join(lines)
