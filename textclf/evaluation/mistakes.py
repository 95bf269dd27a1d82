"""Where a single-label model fails on labelled data: its most confident mistakes (``textclf evaluate --mistakes``).

A mistake is a row whose predicted label (the highest score) is not its true label; the most confident are those
with the highest predicted score, ties in the data's order.  The most confused class pairs come from the confusion
matrix (:func:`textclf.evaluation.metrics.confused_pairs`).
"""

from __future__ import annotations

import numpy as np

from textclf.errors import TextclfError
from textclf.evaluation.metrics import (MAX_MATRIX_CLASSES, confused_pair_lines, cut_to_columns,
                                       terminal_columns)

# Columns a mistake's text keeps however narrow the terminal.
MIN_TEXT_COLUMNS = 20


def check_mistakes(mistakes) -> None:
    """Refuses a ``mistakes`` count that is no positive integer."""
    if isinstance(mistakes, bool) or not isinstance(mistakes, (int, np.integer)) or mistakes < 1:
        raise TextclfError(f"`mistakes` must be a positive integer. Received: mistakes={mistakes!r}")


def labels_and_scores(classifier, texts, batch_size: int = 1024) -> tuple[list[str], np.ndarray]:
    """Each text's most probable label and its probability, batch by batch (no every-class scores kept)."""
    labels, scores = [], []
    for start in range(0, len(texts), batch_size):
        probabilities = np.asarray(classifier.probabilities(texts[start : start + batch_size]))
        best = probabilities.argmax(axis=1)
        labels += [classifier.classes[index] for index in best]
        scores.append(probabilities[np.arange(len(best)), best].astype(np.float64))
    return labels, np.concatenate(scores) if scores else np.zeros(0)


def most_confident_mistakes(texts, true_labels, predicted_labels, scores, limit: int, lines=()) -> list[dict]:
    """The ``limit`` wrong rows with the highest predicted ``scores``, as ``{"row", "text", "true", "predicted",
    "score"}`` (``row``: the row's position among the data's rows, from 0), most confident first, ties in row order;
    with ``lines`` (:class:`textclf.data.dataset.Dataset`'s), also ``line``: where the row is in the file."""
    wrong = np.flatnonzero(np.asarray(true_labels, dtype=object) != np.asarray(predicted_labels, dtype=object))
    order = wrong[np.argsort(-np.asarray(scores)[wrong], kind="stable")][:limit]
    return [{"row": int(row), **({"line": lines[row]} if len(lines) else {}), "text": texts[row],
             "true": true_labels[row], "predicted": predicted_labels[row], "score": round(float(scores[row]), 6)}
            for row in order.tolist()]


def format_mistakes(metrics: dict, columns: int) -> str:
    """The printed mistakes of :func:`textclf.serve.predict.evaluate`'s ``metrics``: score, true -> predicted and
    the text on one line each, the text (its whitespace made single spaces) cut to ``columns`` terminal columns;
    then the most confused pairs, unless ``format_metrics`` lists them already (above ``MAX_MATRIX_CLASSES``)."""
    mistakes = metrics["mistakes"]
    wrong = metrics["support"] - int(np.trace(np.asarray(metrics["confusion_matrix"])))
    lines = [f"most confident mistakes ({len(mistakes)} of {wrong} wrong rows: score, true -> predicted, text)"
             if mistakes else "most confident mistakes: none (every row is right)"]
    for mistake in mistakes:
        start = f"  {mistake['score']:.4f}  {mistake['true']} -> {mistake['predicted']}  "
        text = " ".join(mistake["text"].split())
        room = max(columns - terminal_columns(start), MIN_TEXT_COLUMNS)
        if terminal_columns(text) > room:
            text = cut_to_columns(text, room - 1) + "…"
        lines.append(start + text)
    if len(metrics["classes"]) <= MAX_MATRIX_CLASSES:
        lines += ["", "most confused pairs (true -> predicted: rows)"] + confused_pair_lines(metrics["confused_pairs"])
    return "\n".join(lines)
