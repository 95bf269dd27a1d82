"""The parts of a model with a wide branch, each alone on the validation rows: the recurrent part, the TF-IDF
part and their blend (``metrics.json``'s ``parts``, the training report, ``validation_predictions.jsonl``).

The TF-IDF part's scores are its out-of-fold logits, calibrated by its temperature (the blend's fallback when the
recurrent part trails it): no linear model that saw a validation row scored it.
"""

from __future__ import annotations

import numpy as np

from textclf.evaluation.metrics import classification_metrics_of_indices
from textclf.training.blend import blended


def part_probabilities(recurrent: np.ndarray, wide_logits: np.ndarray, temperature: float) -> dict:
    """``{"recurrent": [rows, classes], "tfidf": [rows, classes]}`` float32 probabilities of each part alone.

    ``recurrent``: the recurrent head's outputs (one sigmoid column for two classes, made ``[1 - p, p]``);
    ``wide_logits``: the linear part's out-of-fold logits, scaled by ``temperature`` as the blend sees them.
    """
    recurrent = np.asarray(recurrent, dtype=np.float32)
    # The blend with the recurrent part's scale 0: the calibrated linear part alone, as choose_blend falls back to.
    alone = blended(recurrent, wide_logits, np.array([0.0, temperature], np.float32),
                    np.zeros(recurrent.shape[1], np.float32))
    if recurrent.shape[1] == 1:
        recurrent = np.concatenate([1.0 - recurrent, recurrent], axis=1)
    return {"recurrent": recurrent, "tfidf": alone}


def parts_metrics(truths: np.ndarray, blend: np.ndarray, parts: dict, classes) -> dict:
    """``{part: {"accuracy", "macro_f1", "predicted_classes"}}`` of ``parts`` and the ``blend`` (probabilities
    ``[rows, classes]``) against class indices ``truths``, computed as the run's own metrics are.

    ``predicted_classes``: how many classes the part predicted at all (1: the same class for every row).
    """
    scored = {"recurrent": parts["recurrent"], "tfidf": parts["tfidf"], "blend": blend}
    report = {}
    for name, probabilities in scored.items():
        predicted = np.asarray(probabilities).argmax(axis=1).astype(np.int32)
        metrics = classification_metrics_of_indices(truths, predicted, classes)
        report[name] = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                        "predicted_classes": int(len(np.unique(predicted)))}
    return report
