"""Classification metrics with scikit-learn, as JSON-ready dictionaries."""

from __future__ import annotations

import unicodedata

import numpy as np


def classification_metrics(true_labels, predicted_labels, classes) -> dict:
    """Accuracy, macro-F1, per-class report and confusion matrix of label strings.

    ``classes`` lists every label in display order.  Returns ``{"accuracy", "macro_f1", "support", "classes",
    "per_class", "report", "confusion_matrix"}``: ``per_class`` maps each class to its precision, recall, f1-score
    and support; ``report`` is scikit-learn's ``classification_report`` as a dictionary (whose averages take the
    place of a class named "accuracy" or "macro avg"); ``confusion_matrix[i][j]`` counts class ``i`` predicted as
    ``j``.
    """
    classes = list(classes)
    return _metrics(list(true_labels), list(predicted_labels), classes, classes)


def classification_metrics_of_indices(true_indices, predicted_indices, classes) -> dict:
    """:func:`classification_metrics` from indices into ``classes``, without a Python string per row.

    Streamed validation (``textclf.training.streamed_rows``) keeps only two int32 arrays.
    """
    classes = list(classes)
    return _metrics(np.asarray(true_indices).tolist(), np.asarray(predicted_indices).tolist(),
                    list(range(len(classes))), classes)


def _metrics(true, predicted, labels: list, classes: list) -> dict:
    """The metrics of rows labelled with ``labels`` (label strings or indices), ``classes`` their names."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    # Macro-F1 averages over the classes with a true or a predicted row: a class with neither (no validation row,
    # never predicted) has no F1 to speak of, and counting it as 0 would lower macro-F1 for an untested class.
    seen = set(true) | set(predicted)
    return {
        "accuracy": float(accuracy_score(true, predicted)),
        "macro_f1": float(f1_score(true, predicted, labels=[label for label in labels if label in seen],
                                   average="macro", zero_division=0)),
        "support": len(true),
        "classes": classes,
        "per_class": per_class(true, predicted, labels, classes),
        "report": classification_report(true, predicted, labels=labels, target_names=classes, output_dict=True,
                                        zero_division=0),
        "confusion_matrix": confusion_matrix(true, predicted, labels=labels).tolist(),
    }


def per_class(true, predicted, labels, classes) -> dict:
    """``{class: {"precision", "recall", "f1-score", "support"}}``, keyed by class name alone.

    scikit-learn's report shares its keys with its averages: a class named "accuracy" was overwritten by a float
    (and reading it raised after training), one named "macro avg" by the average.  ``true`` and ``predicted``:
    labels, indices or multi-hot rows (``labels=None`` then).
    """
    from sklearn.metrics import precision_recall_fscore_support

    scores = precision_recall_fscore_support(true, predicted, labels=labels, average=None, zero_division=0)
    return {name: {"precision": float(precision), "recall": float(recall), "f1-score": float(f1),
                   "support": int(support)}
            for name, precision, recall, f1, support in zip(classes, *scores)}


# The printed report lists at most this many classes, and prints the confusion matrix up to this many (wider, a
# terminal wraps it); metrics.json and the picture hold the rest.
MAX_LISTED_CLASSES = 30
MAX_MATRIX_CLASSES = 10


def confused_pairs(metrics: dict, limit: int = 10) -> list[dict]:
    """The ``limit`` most frequent (true, predicted) pairs of different classes with a row, as ``{"true",
    "predicted", "rows"}``, most rows first (ties: in the confusion matrix's order)."""
    counts = np.array(metrics["confusion_matrix"])
    np.fill_diagonal(counts, 0)
    order = np.argsort(-counts, axis=None, kind="stable")[:limit]
    classes = metrics["classes"]
    pairs = [divmod(int(index), len(classes)) for index in order]
    return [{"true": classes[true], "predicted": classes[predicted], "rows": int(counts[true, predicted])}
            for true, predicted in pairs if counts[true, predicted] > 0]


def confused_pair_lines(pairs: list[dict]) -> list[str]:
    """Lines of :func:`confused_pairs`."""
    return [f"  {pair['true']} -> {pair['predicted']}: {pair['rows']}" for pair in pairs] or ["  none"]


def _parts_lines(parts: dict) -> list[str]:
    """The validation accuracy and macro-F1 of each part of a model with a wide branch, and of their blend."""
    names = {"recurrent": "recurrent alone", "tfidf": "TF-IDF alone", "blend": "blend"}
    lines = ["", f"{'part':<24}{'accuracy':>10}{'macro-F1':>10}"]
    for key, name in names.items():
        lines.append(f"{name:<24}{parts[key]['accuracy']:>10.4f}{parts[key]['macro_f1']:>10.4f}"
                     + ("  stuck: one class" if parts[key]["predicted_classes"] == 1 else ""))
    return lines


def _width(character: str) -> int:
    """Terminal columns of one character (see :func:`terminal_columns`)."""
    return (0 if unicodedata.category(character) in ("Mn", "Me", "Cf")
            else 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1)


def terminal_columns(text: str) -> int:
    """Terminal columns of ``text``: wide and fullwidth characters (CJK) take two, combining marks and format
    characters none."""
    return sum(map(_width, text))


def cut_to_columns(text: str, columns: int) -> str:
    """The longest start of ``text`` within ``columns`` terminal columns (one pass: a mistake's text may be long)."""
    used = 0
    for position, character in enumerate(text):
        used += _width(character)
        if used > columns:
            return text[:position]
    return text


def _pad(text: str, columns: int, right: bool = False) -> str:
    """``text`` padded to ``columns`` terminal columns, left-aligned or right-aligned (format's ``<`` and ``>``
    count characters, and a CJK character takes two columns)."""
    padding = " " * max(columns - terminal_columns(text), 0)
    return padding + text if right else text + padding


def format_metrics(metrics: dict) -> str:
    """Human-readable text of :func:`classification_metrics` output."""
    classes = metrics["classes"]
    multilabel = metrics.get("task") == "multilabel"
    lines = [f"{'subset accuracy' if multilabel else 'accuracy':<16}{metrics['accuracy']:.4f}"]
    if multilabel:
        lines += [f"{'micro-F1':<16}{metrics['micro_f1']:.4f}", f"{'threshold':<16}{metrics['threshold']}"]
    lines += [f"{'macro-F1':<16}{metrics['macro_f1']:.4f}", f"{'rows':<16}{metrics['support']}"]
    if "parts" in metrics:
        lines += _parts_lines(metrics["parts"])
    lines += ["", f"{'class':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    listed = classes
    if len(classes) > MAX_LISTED_CLASSES:  # The classes with rows and the lowest F1; metrics.json holds every one.
        listed = sorted(classes, key=lambda name: (metrics["per_class"][name]["support"] == 0,
                                                   metrics["per_class"][name]["f1-score"]))[:MAX_LISTED_CLASSES]
    for name in listed:
        row = metrics["per_class"][name]
        lines.append(_pad(cut_to_columns(name, 23), 24) + f"{row['precision']:>10.3f}{row['recall']:>10.3f}"
                     f"{row['f1-score']:>10.3f}{int(row['support']):>10}")
    if len(listed) < len(classes):
        lines.append(f"(the {len(listed)} classes with the lowest F1 of {len(classes)}, those with rows first; "
                     "every class in metrics.json)")
    if multilabel:
        return "\n".join(lines)
    if len(classes) > MAX_MATRIX_CLASSES:
        return "\n".join(lines + ["", "most confused pairs (true -> predicted: rows)"]
                         + confused_pair_lines(confused_pairs(metrics)))
    width = max(7, *(terminal_columns(cut_to_columns(name, 12)) for name in classes)) + 1
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 14 + "".join(_pad(cut_to_columns(name, 12), width, right=True) for name in classes)]
    for name, row in zip(classes, np.asarray(metrics["confusion_matrix"])):
        lines.append(_pad(cut_to_columns(name, 13), 14) + "".join(f"{count:>{width}}" for count in row))
    return "\n".join(lines)
