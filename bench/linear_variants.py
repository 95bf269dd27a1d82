"""The wide branch's linear part alone on bench/accuracy.py's held-out splits: how its choice is made.

Usage (from the repository root, after the README's install command):

    python bench/linear_variants.py rt_polarity:1000 chatterbot_topic_zh:500 convention_party:all
    python bench/linear_variants.py --variants full,two-stage-3,two-stage-2,holdout rt_polarity:2000

For each DATA:SIZE and split seed 0-2 (bench/accuracy.py's rows and test rows), a search of
``textclf.training.linear_choice`` on the training rows, then the chosen linear model (or models) refitted on
every training row and scored on the test rows (macro-F1), for these variants (``--variants``; the first four by
default):

- ``full``: the full grid, 5-fold cross-validation, unshuffled folds over the rows in the file's order
  (``GridSearchCV``'s: the strongest baseline's choice);
- ``two-stage``: the two-stage grid, same folds;
- ``shuffled``: the full grid, folds shuffled with the split's seed;
- ``top3``: the logits of the 3 best choices of ``full``, averaged;
- ``two-stage-K``: the two-stage grid in K unshuffled folds (the rung below 5 folds where those cost too much);
- ``holdout``: the two-stage grid fitted on textclf's training rows (every one) and scored on its validation rows
  (the split ``train`` makes: a stratified fifth, the split's seed).

Prints one line per split and the means.
"""

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from accuracy import split_rows  # noqa: E402
from textclf import TrainConfig  # noqa: E402
from textclf.data.dataset import stratified_split  # noqa: E402
from textclf.text.ngrams import count_matrix  # noqa: E402
from textclf.training import linear_choice  # noqa: E402
from textclf.training.wide import ANALYZERS  # noqa: E402

DEFAULT_VARIANTS = ["full", "two-stage", "shuffled", "top3"]


def scores(name, size, seed, variants):
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

    results = {}
    for variant in variants:
        if variant == "top3":
            _, _, scored = linear_choice.search(training, targets, _folds(targets, linear_choice.FOLDS), seed)
            top = sorted(scored, key=lambda name: -scored[name])[:3]  # sorted is stable: the grid's order on ties.
            results[variant] = macro_f1(np.mean([test_logits(_choice(description)) for description in top], axis=0))
            continue
        results[variant] = macro_f1(test_logits(_chosen(variant, training, targets, rows.labels, seed)))
    return results


def _folds(targets, folds, shuffle_seed=None):
    """Stratified folds of the rows as ``linear_choice.splits_of`` makes them (or shuffled with a seed)."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, int(np.bincount(targets).min()))
    if shuffle_seed is not None:
        return list(StratifiedKFold(folds, shuffle=True, random_state=shuffle_seed).split(targets, targets))
    every = linear_choice.Plan("cross-validation", np.arange(len(targets)), folds, "")
    return linear_choice.splits_of(every, targets, len(targets))


def _chosen(variant, training, targets, labels, seed):
    """The :class:`linear_choice.Choice` that ``variant``'s search makes on the training rows."""
    if variant == "holdout":
        train, valid = stratified_split(labels, TrainConfig().validation_fraction, seed)
        order = np.concatenate([train, valid])
        splits = [(np.arange(len(train)), np.arange(len(train), len(order)))]
        ordered = {analyzer: matrix[order] for analyzer, matrix in training.items()}
        return linear_choice.search(ordered, targets[order], splits, seed, "two-stage")[0]
    if variant.startswith("two-stage-"):
        splits = _folds(targets, int(variant.removeprefix("two-stage-")))
        return linear_choice.search(training, targets, splits, seed, "two-stage")[0]
    splits = _folds(targets, linear_choice.FOLDS, seed if variant == "shuffled" else None)
    grid = {"full": "full", "shuffled": "full", "two-stage": "two-stage"}[variant]
    return linear_choice.search(training, targets, splits, seed, grid)[0]


def _choice(description):
    """The :class:`linear_choice.Choice` a ``Choice.describe()`` string names."""
    features, c, weight = description.rsplit(", ", 2)
    return linear_choice.Choice(features, float(c.removeprefix("C=")), None if weight == "unweighted" else weight)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["rt_polarity:1000"], metavar="DATA:SIZE")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated")
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    for variant in args.variants:
        if variant not in ("full", "two-stage", "shuffled", "top3", "holdout") and not (
                variant.startswith("two-stage-") and variant.removeprefix("two-stage-").isdigit()):
            parser.error(f"unknown variant {variant!r}")
    for spec in args.specs:
        name, size = spec.split(":")
        per_split = [scores(name, size if size == "all" else int(size), seed, args.variants) for seed in range(3)]
        for seed, result in enumerate(per_split):
            print(f"{spec} split {seed}: " + ", ".join(f"{key} {value:.4f}" for key, value in result.items()))
        print(f"{spec} mean: " + ", ".join(f"{key} {statistics.mean(r[key] for r in per_split):.4f}"
                                           for key in per_split[0]), flush=True)


if __name__ == "__main__":
    main()
