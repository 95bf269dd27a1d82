"""The wide branch's linear part alone on bench/accuracy.py's held-out splits: how its choice is made.

Usage (from the repository root, after the README's install command):

    python bench/linear_variants.py rt_polarity:1000 chatterbot_topic_zh:500 convention_party:all

For each DATA:SIZE and split seed 0-2 (bench/accuracy.py's rows and test rows), a search of
``textclf.training.linear_choice`` by 5-fold cross-validation on every training row, then the chosen linear model
(or models) refitted on every row and scored on the test rows (macro-F1), for these variants:

- ``full, file order``: the full grid, unshuffled folds over the rows in the file's order (``GridSearchCV``'s,
  what ``textclf train`` does where the cost allows);
- ``two-stage, file order``: the two-stage grid, same folds (where the full grid costs too much);
- ``full, shuffled``: the full grid, folds shuffled with the split's seed;
- ``top 3 averaged``: the logits of the 3 best choices of ``full, file order``, averaged.

Prints one line per split and the means.
"""

import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from accuracy import split_rows  # noqa: E402
from textclf import TrainConfig  # noqa: E402
from textclf.text.ngrams import count_matrix  # noqa: E402
from textclf.training import linear_choice  # noqa: E402
from textclf.training.wide import ANALYZERS  # noqa: E402


def scores(name, size, seed):
    """``{variant: test macro-F1}`` of one split."""
    from sklearn.metrics import f1_score

    rows, test, classes = split_rows(name, size, seed, TrainConfig())
    index = {label: position for position, label in enumerate(classes)}
    count = len(rows.texts)
    targets = np.array([index[label] for label in rows.labels])
    truth = np.array([index[label] for label in test.labels])
    matrices = {analyzer: count_matrix(list(rows.texts) + list(test.texts), analyzer)[0] for analyzer in ANALYZERS}
    training = {analyzer: matrix[:count] for analyzer, matrix in matrices.items()}

    def test_logits(choice):
        features, _ = linear_choice.features_of(matrices, choice.analyzers, np.arange(count))
        fitted = linear_choice.fit(choice, features[:count], targets, len(classes), seed)
        return linear_choice.logits_of(fitted, features[count:])

    def macro_f1(logits):
        predicted = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(axis=1)
        return f1_score(truth, predicted, average="macro")

    from sklearn.model_selection import StratifiedKFold

    results, folds = {}, min(linear_choice.FOLDS, int(np.bincount(targets).min()))
    every = linear_choice.Plan("cross-validation", np.arange(count), folds, "")
    in_order = linear_choice.splits_of(every, targets, count)
    shuffled = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(count), targets))
    for variant, splits, grid in (("full, file order", in_order, "full"), ("two-stage, file order", in_order,
                                                                          "two-stage"),
                                  ("full, shuffled", shuffled, "full")):
        best, _, scored = linear_choice.search(training, targets, splits, seed, grid)
        results[variant] = macro_f1(test_logits(best))
        if variant == "full, file order":
            top = sorted(scored, key=lambda name: -scored[name])[:3]  # sorted is stable: the grid's order on ties.
            top_scores = [test_logits(_choice(description)) for description in top]
    results["top 3 averaged"] = macro_f1(np.mean(top_scores, axis=0))
    return results


def _choice(description):
    """The :class:`linear_choice.Choice` a ``Choice.describe()`` string names."""
    features, c, weight = description.rsplit(", ", 2)
    return linear_choice.Choice(features, float(c.removeprefix("C=")), None if weight == "unweighted" else weight)


def main():
    for spec in sys.argv[1:] or ["rt_polarity:1000"]:
        name, size = spec.split(":")
        per_split = [scores(name, size if size == "all" else int(size), seed) for seed in range(3)]
        for seed, result in enumerate(per_split):
            print(f"{spec} split {seed}: " + ", ".join(f"{key} {value:.4f}" for key, value in result.items()))
        print(f"{spec} mean: " + ", ".join(f"{key} {statistics.mean(r[key] for r in per_split):.4f}"
                                           for key in per_split[0]), flush=True)


if __name__ == "__main__":
    main()
