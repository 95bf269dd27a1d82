"""Fitting the wide TF-IDF branch (``TrainConfig.wide="tfidf"``): a linear model on n-grams of the raw text.

The branch is the strongest linear baseline a careful scikit-learn user builds, chosen on the user's own rows:
the features (word 1-2-grams, character ``char_wb`` n-grams, or both), ``C`` and class weighting are picked by
stratified k-fold cross-validated macro-F1 on every training row (training and validation rows together, as the
baseline sees them), then a logistic regression (Newton-CG) with that choice is refitted on every row.  The n-grams
are :mod:`textclf.text.ngrams`' hashed keys, so the export's graph (:class:`textclf.model.layers.NgramTfidfLogits`)
computes the same features from raw text.  The blend with the recurrent part (:mod:`textclf.training.blend`) is
fitted on the validation rows with the out-of-fold linear logits, which no model that saw those rows produced.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from textclf.evaluation.baseline import STRONGEST_C, STRONGEST_CLASS_WEIGHT, STRONGEST_FALLBACK, STRONGEST_FEATURES
from textclf.log import log
from textclf.training.blend import MAX_RECURRENT_SHORTFALL, blended, choose_blend, temperature
from textclf.model.factory import build_model, compiled_call
from textclf.errors import TextclfError

# The choices cross-validation picks from, the strongest baseline's: n-gram features (analyzer, low, high), C, class
# weighting.
FEATURE_SETS, C_VALUES, CLASS_WEIGHTS = STRONGEST_FEATURES, STRONGEST_C, STRONGEST_CLASS_WEIGHT
# Without cross-validation (a class with a single row, or a cost above MAX_CV_COST).
FALLBACK = STRONGEST_FALLBACK
FOLDS = 5
# n-grams in fewer training rows than this are left out (TfidfVectorizer's min_df).
MIN_ROWS = 2
# Cross-validation fits 7 choices x FOLDS models, each costing about (n-gram occurrences x outputs); above this
# cost it would take many minutes, and the fallback is used (docs/RESULTS.md, "Cost").
MAX_CV_COST = 20_000_000
# The linear part is fitted on at most this many rows, drawn at random: its features and scikit-learn's solver
# grow with the rows, while the recurrent model, which trains on every row, needs the branch least on large data.
MAX_ROWS = 200_000


@dataclasses.dataclass
class Choice:
    """One point of the grid: a :data:`FEATURE_SETS` name, ``C`` and ``class_weight``."""

    features: str
    C: float
    class_weight: str | None

    @property
    def analyzers(self):
        return FEATURE_SETS[self.features]


@dataclasses.dataclass
class LinearPart:
    """A fitted linear part: per analyzer, the n-gram ``keys`` and ``idf``; ``kernel`` [features, outputs]
    (the analyzers' features one after the other), ``bias`` [outputs]."""

    analyzers: tuple
    keys: list
    idf: list
    kernel: np.ndarray
    bias: np.ndarray

    def weights(self) -> list:
        """The weights of :class:`textclf.model.layers.NgramTfidfLogits`, in its order."""
        weights, start = [], 0
        for keys, idf in zip(self.keys, self.idf):
            weights += [keys, idf, self.kernel[start:start + len(keys)]]
            start += len(keys)
        return weights + [self.bias]


def subsample_rows(count: int, targets: np.ndarray, seed: int, limit: int = MAX_ROWS) -> np.ndarray:
    """Sorted indices of about ``limit`` of ``count`` rows drawn without replacement (all when no more than
    ``limit``), plus the first row of any class none of them has (the linear model needs every class)."""
    if count <= limit:
        return np.arange(count)
    chosen = np.random.default_rng(seed).choice(count, limit, replace=False)
    missing = np.setdiff1d(np.unique(targets), targets[chosen])
    return np.union1d(chosen, [np.flatnonzero(targets == label)[0] for label in missing]).astype(np.int64)


def _tfidf(counts, fit_rows):
    """``(features, kept columns, idf)``: sublinear, L2-normalised TF-IDF of every row of ``counts``, with the
    vocabulary (columns in at least :data:`MIN_ROWS` rows) and idf of the ``fit_rows`` alone."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from scipy import sparse

    fitted_on = counts[fit_rows]
    kept = np.flatnonzero(np.bincount(fitted_on.indices, minlength=counts.shape[1]) >= MIN_ROWS)
    if not len(kept):  # No n-gram in two rows: no feature (TfidfTransformer refuses zero columns).
        return sparse.csr_matrix((counts.shape[0], 0)), kept, np.zeros(0, np.float32)
    transformer = TfidfTransformer(sublinear_tf=True).fit(fitted_on[:, kept])
    return transformer.transform(counts[:, kept]), kept, transformer.idf_.astype(np.float32)


def _features(matrices, analyzers, fit_rows):
    """``(features [rows, F], per analyzer (kept columns, idf))``: the analyzers' TF-IDF side by side."""
    from scipy import sparse

    parts = [_tfidf(matrices[analyzer], fit_rows) for analyzer in analyzers]
    return sparse.hstack([part[0] for part in parts]).tocsr(), [(part[1], part[2]) for part in parts]


def _logistic(choice: Choice, seed: int):
    from sklearn.linear_model import LogisticRegression

    # Newton-CG: the same optimum as L-BFGS (the loss is strictly convex), reached 3-4 times as fast on many
    # n-grams and classes, where scipy's L-BFGS-B spends its time on the parameter vectors (docs/RESULTS.md).
    return LogisticRegression(C=choice.C, class_weight=choice.class_weight, solver="newton-cg", max_iter=2000,
                              random_state=seed)


class _NoFeatures:
    """The linear model of rows with no feature: logits 0, every class alike (LogisticRegression needs a column)."""

    def __init__(self, classes: int):
        self.classes_ = np.arange(classes)
        self.coef_ = np.zeros((1 if classes == 2 else classes, 0))
        self.intercept_ = np.zeros(1 if classes == 2 else classes)

    def decision_function(self, features):
        return np.zeros((features.shape[0],) if len(self.classes_) == 2 else (features.shape[0], len(self.classes_)))


def _fit(choice: Choice, features, targets, classes: int, seed: int):
    """``choice``'s logistic regression fitted on ``features``."""
    if features.shape[1] == 0:
        return _NoFeatures(classes)
    return _logistic(choice, seed).fit(features, targets)


def _logits(linear, features) -> np.ndarray:
    """``[rows, outputs]`` decision values (one column for two classes, as the sigmoid head)."""
    values = linear.decision_function(features)
    return (values[:, None] if values.ndim == 1 else values).astype(np.float32)


def _stages(features: str):
    """The choices to score: every feature set at ``FALLBACK``'s C and class weighting, then every C and class
    weighting with the best feature set (``features``): 7 of the 16 points of the grid, the two that matter
    least chosen once the one that matters most is fixed."""
    if features is None:
        return [Choice(name, FALLBACK[1], FALLBACK[2]) for name in FEATURE_SETS]
    return [Choice(features, c, weight) for c in C_VALUES for weight in CLASS_WEIGHTS
            if (c, weight) != FALLBACK[1:]]


def cross_validate(matrices, targets, folds: int, seed: int):
    """``(best Choice, its out-of-fold logits [rows, outputs], {choice description: mean macro-F1})``.

    Stratified ``folds`` (shuffled with ``seed``); each choice of :func:`_stages` is scored by its folds' mean
    macro-F1, as ``GridSearchCV(scoring="f1_macro")`` scores it; the first best wins a tie.
    """
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(targets)), targets))
    scored = {}  # Choice description -> (Choice, mean macro-F1, out-of-fold logits)
    best = None
    for stage in (None, "second"):
        for choice in _stages(None if stage is None else best.features):
            scored[_describe(choice)] = (choice, *_score(choice, matrices, targets, splits, seed))
        best = max(scored.values(), key=lambda entry: entry[1])[0]  # max keeps the first of equal scores.
    _, _, out_of_fold = scored[_describe(best)]
    return best, out_of_fold, {name: round(score, 4) for name, (_, score, _) in scored.items()}


def _describe(choice: Choice) -> str:
    return f"{choice.features}, C={choice.C:g}, {choice.class_weight or 'unweighted'}"


def _score(choice: Choice, matrices, targets, splits, seed: int):
    """``(mean macro-F1 over the folds, out-of-fold logits [rows, outputs])`` of ``choice``."""
    from sklearn.metrics import f1_score

    classes = int(targets.max()) + 1
    out_of_fold = np.zeros((len(targets), 1 if classes == 2 else classes), np.float32)
    scores = []
    for fit_rows, held_rows in splits:
        features, _ = _features(matrices, choice.analyzers, fit_rows)
        linear = _fit(choice, features[fit_rows], targets[fit_rows], classes, seed)
        logits = _logits(linear, features[held_rows])
        out_of_fold[held_rows] = logits
        predicted = (logits[:, 0] > 0).astype(int) if classes == 2 else logits.argmax(axis=1)
        scores.append(f1_score(targets[held_rows], predicted, average="macro"))
    return float(np.mean(scores)), out_of_fold


def _fit_part(matrices, targets, choice: Choice, keys, seed: int) -> LinearPart:
    """The linear part with ``choice`` fitted on every row of ``matrices``."""
    rows = np.arange(len(targets))
    features, kept = _features(matrices, choice.analyzers, rows)
    linear = _fit(choice, features, targets, int(targets.max()) + 1, seed)
    kernel = linear.coef_.T.astype(np.float32)
    return LinearPart(choice.analyzers, [keys[analyzer][columns] for analyzer, (columns, _) in
                                         zip(choice.analyzers, kept)],
                      [idf for _, idf in kept], kernel, linear.intercept_.astype(np.float32))


@dataclasses.dataclass
class LinearFits:
    """What the linear fits give the blend and the model.

    ``valid_logits`` [validation rows, outputs]: out-of-fold logits of the chosen linear model (no fold model saw
    its row); ``final``: the chosen model refitted on training and validation rows together; ``report``: the
    choice and how it was made, for ``run.json``; ``temperature``: the factor that calibrates the linear part's
    logits, from its out-of-fold logits on every row (1.0 without cross-validation).
    """

    valid_logits: np.ndarray
    final: LinearPart
    report: dict
    temperature: float = 1.0


def fit_linear(classes, train_rows, valid_rows, seed: int) -> LinearFits:
    """Chooses and fits the linear part on the training and validation rows' texts (not the recurrent model)."""
    from textclf.text.ngrams import count_matrix

    texts = list(train_rows.texts) + list(valid_rows.texts)
    targets = np.concatenate([train_rows.class_indices(), valid_rows.class_indices()])
    if len(np.unique(targets)) != len(classes):
        raise TextclfError(f"`wide` needs rows of every class; the training rows hold {len(np.unique(targets))} "
                         f"of {len(classes)}")
    rows = subsample_rows(len(texts), targets, seed)
    if len(rows) < len(texts):
        log(f"wide branch: its linear part is fitted on {len(rows):,} of {len(texts):,} rows drawn at random, "
            "so memory stays bounded")
    analyzers = sorted({analyzer for analyzers in FEATURE_SETS.values() for analyzer in analyzers})
    matrices, keys = {}, {}
    for analyzer in analyzers:
        matrices[analyzer], keys[analyzer] = count_matrix([texts[row] for row in rows], analyzer)
    folds = min(FOLDS, int(np.bincount(targets[rows]).min()))
    cost = sum(matrix.nnz for matrix in matrices.values()) * (1 if len(classes) == 2 else len(classes))
    if folds >= 2 and cost <= MAX_CV_COST:
        choice, out_of_fold, scores = cross_validate(matrices, targets[rows], folds, seed)
        how = {"method": f"{folds}-fold cross-validated macro-F1 on {len(rows):,} rows", "scores": scores}
    else:
        choice, out_of_fold = Choice(*FALLBACK), None
        why = ("a class has one row" if folds < 2 else
               f"cross-validation would cost {cost:,} n-gram occurrences x outputs, above {MAX_CV_COST:,}")
        how = {"method": f"fixed ({why})"}
    final = _fit_part(matrices, targets[rows], choice, keys, seed)
    valid_logits = _valid_logits(out_of_fold, rows, len(train_rows), len(texts), final, valid_rows)
    scale = 1.0 if out_of_fold is None else temperature(out_of_fold, targets[rows])
    report = {"features": choice.features, "C": choice.C, "class_weight": choice.class_weight or "none", **how,
              "temperature": round(scale, 4)}
    log(f"wide branch: {choice.features}, C={choice.C:g}, class weight {report['class_weight']} "
        f"({how['method']})")
    return LinearFits(valid_logits, final, report, scale)


def _valid_logits(out_of_fold, rows, train_count, total, final: LinearPart, valid_rows) -> np.ndarray:
    """The validation rows' out-of-fold logits; where there are none (no cross-validation, or a row left out of
    the subsample), the final model's own, which saw those rows."""
    from textclf.model.layers import NgramTfidfLogits

    import tensorflow as tf

    layer = NgramTfidfLogits(final.analyzers, [len(keys) for keys in final.keys], final.kernel.shape[1])
    layer.set_weights(final.weights())
    logits = np.array(layer(tf.constant(list(valid_rows.texts), tf.string)), dtype=np.float32)
    if out_of_fold is not None:
        position = np.full(total, -1)
        position[rows] = np.arange(len(rows))
        at = position[train_count:]
        logits[at >= 0] = out_of_fold[at[at >= 0]]
    return logits


class LinearFitsInBackground:
    """:func:`fit_linear` in a thread, started before the recurrent model trains; :meth:`result` waits for it.

    The fits need only the rows' texts, so they overlap the epochs: scikit-learn's solver runs mostly on one
    core, and the recurrent loop's small per-step products do not keep every core busy.  A daemon thread, so an
    interrupted run does not wait for it.
    """

    def __init__(self, classes, train_rows, valid_rows, seed: int):
        self._fits, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(classes, train_rows, valid_rows, seed),
                                        name="textclf-wide", daemon=True)
        self._thread.start()

    def _run(self, *arguments):
        try:
            self._fits = fit_linear(*arguments)
        except BaseException as error:  # Raised again in the caller's thread by result().
            self._error = error

    def result(self) -> LinearFits:
        """The fits, once done; an error of the fits is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._fits


def with_wide(model, config, vocabulary_size, classes, part: LinearPart, scales, blend_bias):
    """``build_model`` with the branch: the recurrent weights copied from ``model``, the branch's and blend's set."""
    combined = build_model(config, vocabulary_size, len(classes),
                           wide=(part.analyzers, [len(keys) for keys in part.keys]))
    for layer in model.layers:
        if layer.weights:  # The recurrent part's layers, by name.
            combined.get_layer(layer.name).set_weights(layer.get_weights())
    combined.get_layer("ngram_tfidf").set_weights(part.weights())
    combined.get_layer("blend").set_weights([scales, blend_bias])
    return combined


def fit_wide(model, config, tokenizer, classes, valid_rows, linear: LinearFits):
    """``(validation_probabilities, model, recurrent)``: the trained recurrent ``model`` with the wide branch.

    The blend is fitted on the validation rows' recurrent outputs (``recurrent``, the head's) and out-of-fold linear
    logits; ``validation_probabilities`` [validation rows, outputs] are that blend's outputs (the validation metrics
    are theirs).  ``model`` holds the linear part refitted on training and validation rows together, as the baseline
    learns from every row, with the same blend.
    """
    call = compiled_call(model)
    recurrent = np.concatenate([np.asarray(call(ids)) for ids, _ in valid_rows.batches(1024)])
    scales, blend_bias, parts = choose_blend(recurrent, linear.valid_logits, valid_rows.class_indices(),
                                             linear.temperature)
    linear.report["validation_macro_f1"] = {name: round(value, 4) for name, value in parts.items()}
    if parts["recurrent"] < parts["tfidf"] - MAX_RECURRENT_SHORTFALL:
        log(f"wide branch: the recurrent part alone (validation macro-F1 {parts['recurrent']:.3f}) trails the "
            f"TF-IDF part ({parts['tfidf']:.3f}) by more than {MAX_RECURRENT_SHORTFALL}: the model is the TF-IDF "
            "part alone")
    final = with_wide(model, config, tokenizer.vocabulary_size, classes, linear.final, scales, blend_bias)
    sizes = ", ".join(f"{len(keys):,}" for keys in linear.final.keys)
    log(f"wide branch: {sizes} n-grams, refitted on training and validation rows; blend fitted on the validation "
        f"rows: {scales[0]:.3f} x recurrent + {scales[1]:.3f} x TF-IDF logits")
    linear.report["blend"] = {"recurrent": round(float(scales[0]), 4), "tfidf": round(float(scales[1]), 4)}
    return blended(recurrent, linear.valid_logits, scales, blend_bias), final, recurrent
