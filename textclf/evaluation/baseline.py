"""The tuned TF-IDF + logistic-regression baseline, and the held-out split both sides are scored on.

A recurrent model is only worth its cost if it beats this pipeline, which fits in seconds.  ``textclf baseline``
and ``bench/accuracy.py`` score both on test rows that neither side trains or early-stops on.
"""

from __future__ import annotations

import time
from collections import Counter

from textclf.data.dataset import Dataset
from textclf.evaluation.metrics import classification_metrics

BASELINE = "TF-IDF + LogReg"
STRONGEST = "TF-IDF + LogReg, CV-chosen"
# The strongest baseline's choices: features x C x class weighting, each scored by 5-fold cross-validated macro-F1
# on the training rows (scikit-learn's GridSearchCV).
# textclf's wide branch chooses from the same (textclf.training.linear_choice).
STRONGEST_FEATURES = {
    "word 1-2": (("word", 1, 2),),
    "word 1-2 + char_wb 2-5": (("word", 1, 2), ("char_wb", 2, 5)),
    "char_wb 1-3": (("char_wb", 1, 3),),
    "char_wb 2-5": (("char_wb", 2, 5),),
}
STRONGEST_C = (4.0, 16.0)
STRONGEST_CLASS_WEIGHT = (None, "balanced")
# Without cross-validation (a class with a single row; the wide branch also above its cost bound): word and character
# n-grams together, the choice that ranked first or second on every public set (docs/RESULTS.md).
STRONGEST_FALLBACK = ("word 1-2 + char_wb 2-5", 16.0, "balanced")


def tfidf_pipeline(cjk: bool = False, seed: int = 0):
    """The unfitted baseline ``Pipeline``: TF-IDF of word 1-2-grams, sublinear tf, min_df 2, LogReg C=4.

    Tuned: scikit-learn's defaults (C=1, raw term counts) score lower.  Newton-CG, as the strongest baseline: L-BFGS
    keeps 10 pairs of parameter vectors (n-grams x classes each), 4.9 GB at 1,000 classes against 1.8 GB.  ``cjk``: character 1-3-grams within word
    boundaries (``char_wb``), for text with no spaces between words; ``seed``: the solver's ``random_state``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from textclf.evaluation.tfidf import SparseTfidf

    vectorizer = (SparseTfidf(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2) if cjk
                  else SparseTfidf(ngram_range=(1, 2), sublinear_tf=True, min_df=2))
    return make_pipeline(vectorizer, LogisticRegression(C=4.0, solver="newton-cg", max_iter=2000, random_state=seed))


def _vectorizer(analyzers):
    """TF-IDF (sublinear tf, min_df 2) of ``[(analyzer, low, high), ...]`` n-grams; several are joined as
    scikit-learn's ``FeatureUnion`` joins them (each part L2-normalised on its own; one keeping no n-gram is a
    column of zeros, :class:`textclf.evaluation.tfidf.SparseTfidf`)."""
    from sklearn.pipeline import make_union

    from textclf.evaluation.tfidf import SparseTfidf

    parts = [SparseTfidf(analyzer=analyzer, ngram_range=(low, high), sublinear_tf=True, min_df=2)
             for analyzer, low, high in analyzers]
    return parts[0] if len(parts) == 1 else make_union(*parts)


def strongest_search(seed: int = 0, folds: int = 5, memory=None):
    """The unfitted strongest linear baseline: ``GridSearchCV`` over :data:`STRONGEST_FEATURES` x
    :data:`STRONGEST_C` x :data:`STRONGEST_CLASS_WEIGHT`, scored by macro-F1 over stratified ``folds``, refitted on
    every row with the best choice (the first best in the grid's order when tied).  ``memory``: a folder (or
    ``joblib.Memory``) caching fitted vectorizers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    # Newton-CG: the optimum L-BFGS reaches (the loss is strictly convex), 3-4 times as fast on many n-grams and
    # classes; the vectorizers are cached across the C and class-weight choices of each fold.
    pipeline = Pipeline([("features", _vectorizer(STRONGEST_FEATURES["word 1-2"])),
                         ("linear", LogisticRegression(solver="newton-cg", max_iter=2000, random_state=seed))],
                        memory=memory)
    grid = {"features": [_vectorizer(analyzers) for analyzers in STRONGEST_FEATURES.values()],
            "linear__C": list(STRONGEST_C), "linear__class_weight": list(STRONGEST_CLASS_WEIGHT)}
    return GridSearchCV(pipeline, grid, scoring="f1_macro", cv=StratifiedKFold(folds), error_score="raise")


def run_strongest(train_data: Dataset, test_data: Dataset, classes, seed: int = 0) -> dict:
    """Fits :func:`strongest_search` on ``train_data``: its :func:`classification_metrics` on ``test_data``,
    ``fit_seconds`` (the whole search) and ``chosen`` (features, C, class weight).

    A class with a single training row leaves no stratified folds to search with (scikit-learn refuses one fold):
    the choice is then the fixed one (``STRONGEST_FALLBACK``, as in the wide branch), fitted on every row, and
    ``chosen["fixed"]`` says why.
    """
    import tempfile

    folds = min(5, min(Counter(train_data.labels).values()))
    with tempfile.TemporaryDirectory(prefix="textclf-baseline-") as cache:
        if folds >= 2:
            search = strongest_search(seed, folds=folds, memory=cache)
        else:
            search = strongest_search(seed, memory=cache).estimator.set_params(
                features=_vectorizer(STRONGEST_FEATURES[STRONGEST_FALLBACK[0]]), linear__C=STRONGEST_FALLBACK[1],
                linear__class_weight=STRONGEST_FALLBACK[2])
        started = time.perf_counter()
        search.fit(train_data.texts, train_data.labels)
        seconds = time.perf_counter() - started
    metrics = classification_metrics(test_data.labels, search.predict(test_data.texts).tolist(), classes)
    metrics["fit_seconds"] = round(seconds, 2)
    if folds < 2:
        features, c, class_weight = STRONGEST_FALLBACK
        metrics["chosen"] = {"features": features, "C": c, "class_weight": class_weight,
                             "fixed": "a class has one training row, too few to cross-validate"}
        return metrics
    best = search.best_params_
    names = {repr(_vectorizer(analyzers)): name for name, analyzers in STRONGEST_FEATURES.items()}
    metrics["chosen"] = {"features": names[repr(best["features"])], "C": best["linear__C"],
                         "class_weight": best["linear__class_weight"]}
    return metrics


def held_out_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(rest, test)``: a stratified ``fraction`` of ``data`` held out for scoring only.

    scikit-learn's ``train_test_split`` (stratified, ``random_state=seed``): the split a scikit-learn user would
    make.  A class with a single row stays in ``rest``.  Where it cannot stratify (it needs a test row and a
    training row of every class, so at least as many of each as classes), each class holds out
    ``round(fraction * rows)`` of its rows but keeps one (:func:`textclf.data.dataset.stratified_split`, which
    refuses data with no row to hold out).
    """
    import math

    from sklearn.model_selection import train_test_split

    from textclf.data.dataset import stratified_split

    counts = Counter(data.labels)
    rows = [index for index, label in enumerate(data.labels) if counts[label] > 1]
    singles = [index for index, label in enumerate(data.labels) if counts[label] == 1]
    tested = math.ceil(fraction * len(rows))  # train_test_split's test size.
    if min(tested, len(rows) - tested) < len(counts) - len(singles) or not rows:
        rest, test = stratified_split(data.labels, fraction, seed)
        return data.subset(rest), data.subset(test)
    rest, test = train_test_split(rows, test_size=fraction, random_state=seed,
                                  stratify=[data.labels[index] for index in rows])
    return data.subset(sorted(rest) + singles), data.subset(sorted(test))


def run_baseline(train_data: Dataset, test_data: Dataset, classes, cjk: bool = False, seed: int = 0) -> dict:
    """Fits the baseline on ``train_data``: its :func:`classification_metrics` on ``test_data`` and ``fit_seconds``."""
    pipeline = tfidf_pipeline(cjk, seed)
    started = time.perf_counter()
    pipeline.fit(train_data.texts, train_data.labels)
    seconds = time.perf_counter() - started
    metrics = classification_metrics(test_data.labels, pipeline.predict(test_data.texts).tolist(), classes)
    metrics["fit_seconds"] = round(seconds, 2)
    return metrics


def comparison_table(rows: dict[str, dict]) -> str:
    """A Markdown table of accuracy and macro-F1, one row per model."""
    lines = ["| model | accuracy | macro-F1 |", "|---|---|---|"]
    lines += [f"| {name} | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} |" for name, metrics in rows.items()]
    return "\n".join(lines)
