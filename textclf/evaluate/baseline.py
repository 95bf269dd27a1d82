"""The TF-IDF + logistic-regression baseline, on the same split as ``train``.

A recurrent model is only worth its cost if it beats this pipeline, which fits
in seconds; ``textclf baseline`` shows both side by side.
"""

from __future__ import annotations

import time

from textclf.config import TrainConfig
from textclf.data.dataset import Dataset
from textclf.evaluate.metrics import classification_metrics


BASELINES = {
    # scikit-learn's defaults on word 1-2-grams: the baseline to beat.
    "TF-IDF 1-2-grams + LogReg": {"vectorizer": {"ngram_range": (1, 2)}, "classifier": {}},
    # A tuned variant (sublinear tf, weaker regularisation), shown for honesty.
    "TF-IDF 1-2-grams + LogReg (sublinear tf, C=10)": {
        "vectorizer": {"ngram_range": (1, 2), "sublinear_tf": True}, "classifier": {"C": 10.0},
    },
}


def tfidf_pipeline(name: str = "TF-IDF 1-2-grams + LogReg", seed: int = 0):
    """The scikit-learn pipeline of one of ``BASELINES``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    settings = BASELINES[name]
    return make_pipeline(
        TfidfVectorizer(**settings["vectorizer"]),
        LogisticRegression(max_iter=2000, random_state=seed, **settings["classifier"]),
    )


def run_baseline(train_data: Dataset, valid_data: Dataset, classes, config: TrainConfig,
                 name: str = "TF-IDF 1-2-grams + LogReg") -> dict:
    """Fits a baseline on ``train_data`` and scores it on ``valid_data``.

    Returns:
        Validation metrics (see :func:`textclf.evaluate.metrics.classification_metrics`)
        plus ``fit_seconds``.
    """
    pipeline = tfidf_pipeline(name, config.seed)
    started = time.perf_counter()
    pipeline.fit(train_data.texts, train_data.labels)
    seconds = time.perf_counter() - started
    metrics = classification_metrics(valid_data.labels, pipeline.predict(valid_data.texts).tolist(), classes)
    metrics["fit_seconds"] = round(seconds, 2)
    return metrics


def comparison_table(rows: dict[str, dict]) -> str:
    """A Markdown table of accuracy and macro-F1, one row per model."""
    lines = ["| model | accuracy | macro-F1 |", "|---|---|---|"]
    for name, metrics in rows.items():
        lines.append(f"| {name} | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} |")
    return "\n".join(lines)
