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


def tfidf_pipeline(cjk: bool = False, seed: int = 0):
    """The unfitted baseline ``Pipeline``: TF-IDF of word 1-2-grams, sublinear tf, min_df 2, LogReg C=4.

    Tuned: scikit-learn's defaults (C=1, raw term counts) score lower.  ``cjk``: character 1-3-grams within word
    boundaries (``char_wb``), for text with no spaces between words; ``seed``: the solver's ``random_state``.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vectorizer = (TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2) if cjk
                  else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2))
    return make_pipeline(vectorizer, LogisticRegression(C=4.0, max_iter=2000, random_state=seed))


def held_out_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(rest, test)``: a stratified ``fraction`` of ``data`` held out for scoring only.

    scikit-learn's ``train_test_split`` (stratified, ``random_state=seed``): the split a scikit-learn user would
    make.  A class with a single row stays in ``rest``.
    """
    from sklearn.model_selection import train_test_split

    counts = Counter(data.labels)
    rows = [index for index, label in enumerate(data.labels) if counts[label] > 1]
    singles = [index for index, label in enumerate(data.labels) if counts[label] == 1]
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
