"""Choosing the wide branch's linear model: n-gram features, ``C`` and class weighting, scored on held-out rows.

The grid is the strongest linear baseline's (:mod:`textclf.evaluation.baseline`).  :func:`search` scores its
choices on given splits of the rows: stratified k folds of every row (cross-validation, as ``GridSearchCV``
scores), or one split, the training rows against the validation rows (the holdout).  :func:`plan` picks the method
and the rows from the data's size and cost (docs/RESULTS.md, "How the wide branch chooses").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from textclf.training.blend import predicted_classes
from textclf.training.fit_threads import parallel_fits, yield_to_training
from textclf.evaluation.baseline import STRONGEST_C, STRONGEST_CLASS_WEIGHT, STRONGEST_FALLBACK, STRONGEST_FEATURES

# The choices: n-gram features (analyzer, low, high), C, class weighting.
FEATURE_SETS, C_VALUES, CLASS_WEIGHTS = STRONGEST_FEATURES, STRONGEST_C, STRONGEST_CLASS_WEIGHT
# Without a search (a class with a single row and no validation row of it).
FALLBACK = STRONGEST_FALLBACK
FOLDS = 5
# n-grams in fewer training rows than this are left out (TfidfVectorizer's min_df).
MIN_ROWS = 2
# The cost of a search: fits x their rows x n-grams per row x outputs; Newton-CG's time grows about linearly with
# it (docs/RESULTS.md, "How the wide branch chooses").  The two-stage grid's cross-validation gets the larger
# budget: on small data the holdout's validation rows are too few to rank the choices.
CV_MAX_COST = 2_000_000_000
SEARCH_MAX_COST = 400_000_000


@dataclasses.dataclass
class Choice:
    """One point of the grid: a :data:`FEATURE_SETS` name, ``C`` and ``class_weight``."""

    features: str
    C: float
    class_weight: str | None

    @property
    def analyzers(self):
        return FEATURE_SETS[self.features]

    def describe(self) -> str:
        return f"{self.features}, C={self.C:g}, {self.class_weight or 'unweighted'}"


@dataclasses.dataclass
class Plan:
    """How to choose: ``method`` ("cross-validation", "holdout" or "fixed"); ``rows``: the positions (among the
    rows given to :func:`plan`) the search fits and scores on; ``folds`` of the cross-validation; ``grid``: "full"
    (every point, as the strongest baseline) or "two-stage" (:func:`_stages`); ``why``: the reason, for
    ``run.json``."""

    method: str
    rows: np.ndarray
    folds: int
    why: str
    grid: str = "full"


def grid_size(grid: str) -> int:
    """How many choices a ``grid`` ("full" or "two-stage") scores."""
    points = len(C_VALUES) * len(CLASS_WEIGHTS)
    return len(FEATURE_SETS) * points if grid == "full" else len(FEATURE_SETS) + points - 1


def plan(targets: np.ndarray, train_count: int, cost_per_row: float, seed: int) -> Plan:
    """The search for rows whose first ``train_count`` are training rows and the rest validation rows.

    ``cost_per_row``: n-grams per row (every analyzer of the grid) x outputs.  In order: cross-validation of the
    full grid on every row within :data:`SEARCH_MAX_COST` (the strongest baseline's own search, so where the
    linear part stands alone the model is that baseline); of the two-stage grid within :data:`CV_MAX_COST`, in as
    many of those folds as it holds, down to 2; the holdout where the training and the validation rows hold every
    class, its training rows drawn at random down to :data:`SEARCH_MAX_COST`; cross-validation on rows drawn at
    random, while the rows every class needs cost at most :data:`CV_MAX_COST` (many classes of 2 rows each: no
    search).  No search when a class has a single row.
    """
    count, counts = len(targets), np.bincount(targets)
    folds = min(FOLDS, int(counts.min()))  # As the strongest baseline: every class in every held fold.
    # The full grid in the baseline's folds; else the two-stage grid in as many folds as the budget holds, down to
    # 2: every row is scored, where the holdout scores the validation rows alone (a fifth of them) for about the
    # cost of 2 folds (docs/RESULTS.md, "How the wide branch chooses").
    for grid, budget, fewest in (("full", SEARCH_MAX_COST, folds), ("two-stage", CV_MAX_COST, 2)):
        for k in range(folds, max(fewest, 2) - 1, -1):
            if grid_size(grid) * (k - 1) * count * cost_per_row <= budget:
                return Plan("cross-validation", np.arange(count), k,
                            f"{k}-fold cross-validated macro-F1 on {count:,} rows, {grid} grid", grid)
    choices = grid_size("two-stage")
    cv_cost = choices * count * cost_per_row  # Two-stage, 2 folds: the cheapest cross-validation of every row.
    if min(np.bincount(part, minlength=len(counts)).min() for part in np.split(targets, [train_count])) >= 1:
        fitted = _within(np.arange(train_count), targets, SEARCH_MAX_COST / (choices * cost_per_row), 1, seed)
        return Plan("holdout", np.concatenate([fitted, np.arange(train_count, count)]), 1,
                    f"macro-F1 on the {count - train_count:,} validation rows, fitted on {len(fitted):,} training "
                    f"rows, two-stage grid; 2-fold cross-validation would cost {cv_cost:,.0f}, above {CV_MAX_COST:,}",
                    "two-stage")
    if folds >= 2:
        rows = _within(np.arange(count), targets, SEARCH_MAX_COST / (choices * (folds - 1) * cost_per_row), folds,
                       seed)
        drawn_cost = choices * (folds - 1) * len(rows) * cost_per_row  # Every class's rows can exceed the draw.
        if drawn_cost <= CV_MAX_COST:
            return Plan("cross-validation", rows, folds, f"{folds}-fold cross-validated macro-F1 on {len(rows):,} "
                        f"rows drawn at random of {count:,}, two-stage grid", "two-stage")
        return Plan("fixed", np.arange(0), 0, f"cross-validation on the {len(rows):,} rows that hold {folds} of "
                    f"every class would cost {drawn_cost:,.0f}, above {CV_MAX_COST:,}")
    return Plan("fixed", np.arange(0), 0, "a class has one row, too few to score choices on")


def _within(rows: np.ndarray, targets: np.ndarray, limit: float, least: int, seed: int) -> np.ndarray:
    """``rows``, or about ``limit`` of them drawn at random, plus rows of any class with fewer than ``least`` of
    them (its first ``least``), so that every fold or fit has every class."""
    if len(rows) <= limit:
        return rows
    chosen = np.random.default_rng(seed).choice(rows, max(int(limit), 1), replace=False)
    extra = [rows[targets[rows] == label][:least] for label in np.unique(targets[rows])
             if np.count_nonzero(targets[chosen] == label) < least]
    return np.union1d(chosen, np.concatenate(extra) if extra else []).astype(np.int64)


def splits_of(selection: Plan, targets: np.ndarray, train_count: int, order: np.ndarray | None = None) -> list:
    """The ``(fit positions, held positions)`` pairs of ``selection``, positions into ``selection.rows``.

    Cross-validation: scikit-learn's ``StratifiedKFold`` (unshuffled, ``GridSearchCV``'s folds) over the rows
    sorted by ``order`` (each row's place in the user's file; the given order without it), so the folds are the
    strongest baseline's on the same rows.
    """
    from sklearn.model_selection import StratifiedKFold

    if selection.method == "holdout":
        held = selection.rows >= train_count
        return [(np.flatnonzero(~held), np.flatnonzero(held))]
    ranked = (np.arange(len(selection.rows)) if order is None
              else np.argsort(order[selection.rows], kind="stable"))
    folds = StratifiedKFold(n_splits=selection.folds).split(ranked, targets[selection.rows][ranked])
    return [(ranked[fitted], ranked[held]) for fitted, held in folds]


def tfidf(counts, fit_rows):
    """``(features, kept columns, idf)``: sublinear, L2-normalised TF-IDF of every row of ``counts``, with the
    vocabulary (columns in at least :data:`MIN_ROWS` rows) and idf of the ``fit_rows`` alone."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    fitted_on = counts[fit_rows]
    kept = np.flatnonzero(np.bincount(fitted_on.indices, minlength=counts.shape[1]) >= MIN_ROWS)
    if not len(kept):  # No n-gram in two rows: no feature (TfidfTransformer refuses zero columns).
        return sparse.csr_matrix((counts.shape[0], 0), dtype=counts.dtype), kept, np.zeros(0, np.float32)
    transformer = TfidfTransformer(sublinear_tf=True).fit(fitted_on[:, kept])
    return transformer.transform(counts[:, kept]), kept, transformer.idf_.astype(np.float32)


def features_of(matrices, analyzers, fit_rows):
    """``(features [rows, F], per analyzer (kept columns, idf))``: the analyzers' TF-IDF side by side."""
    from scipy import sparse

    parts = [tfidf(matrices[analyzer], fit_rows) for analyzer in analyzers]
    return sparse.hstack([part[0] for part in parts]).tocsr(), [(part[1], part[2]) for part in parts]


class _NoFeatures:
    """The linear model of rows with no feature: logits 0, every class alike (LogisticRegression needs a column)."""

    def __init__(self, classes: int):
        self.classes_ = np.arange(classes)
        self.coef_ = np.zeros((1 if classes == 2 else classes, 0))
        self.intercept_ = np.zeros(1 if classes == 2 else classes)

    def decision_function(self, features):
        return np.zeros((features.shape[0],) if len(self.classes_) == 2 else (features.shape[0], len(self.classes_)))


def fit(choice: Choice, features, targets, classes: int, seed: int):
    """``choice``'s logistic regression fitted on ``features``."""
    from sklearn.linear_model import LogisticRegression

    if features.shape[1] == 0:
        return _NoFeatures(classes)
    # Newton-CG: the same optimum as L-BFGS (the loss is strictly convex), reached 3-4 times as fast on many
    # n-grams and classes, where scipy's L-BFGS-B spends its time on the parameter vectors (docs/RESULTS.md).
    return LogisticRegression(C=choice.C, class_weight=choice.class_weight, solver="newton-cg", max_iter=2000,
                              random_state=seed).fit(features, targets)


def logits_of(linear, features) -> np.ndarray:
    """``[rows, outputs]`` decision values (one column for two classes, as the sigmoid head)."""
    values = linear.decision_function(features)
    return (values[:, None] if values.ndim == 1 else values).astype(np.float32)


def _stages(features: str | None):
    """The two-stage grid: every feature set at ``FALLBACK``'s C and class weighting, then every C and class
    weighting with the best feature set (``features``): 7 of the 16 points of the grid, the two that matter
    least chosen once the one that matters most is fixed."""
    if features is None:
        return [Choice(name, FALLBACK[1], FALLBACK[2]) for name in FEATURE_SETS]
    return [Choice(features, c, weight) for c in C_VALUES for weight in CLASS_WEIGHTS
            if (c, weight) != FALLBACK[1:]]


def full_grid():
    """Every choice, in ``GridSearchCV``'s order (features, then C, then class weighting), so ties go alike."""
    return [Choice(name, c, weight) for name in FEATURE_SETS for c in C_VALUES for weight in CLASS_WEIGHTS]


def search(matrices, targets, splits, seed: int, grid: str = "full"):
    """``(best Choice, its held-out logits [rows, outputs], {choice description: mean macro-F1})``.

    Each choice of ``grid`` ("full": :func:`full_grid`; "two-stage": :func:`_stages`) is fitted on each split's
    fit rows and scored by the macro-F1 of its held rows, the mean over ``splits`` as
    ``GridSearchCV(scoring="f1_macro")`` scores; the first best wins a tie.  The logits are those of the split
    that holds a row out (zero where none does).
    """
    from scipy import sparse

    scored = {}  # Choice description -> (Choice, mean macro-F1, held-out logits)
    if grid != "full":  # The full grid stays the strongest baseline's own search, in float64 as GridSearchCV.
        # The two-stage grid's fits in float32: 0.5-0.9 of float64's time, the same choices on the public sets,
        # held-out classes (the blend's and temperature's inputs) that differ on at most 0.3% of rows, as two BLAS
        # threads' sums against one's do: the solver stops at a tolerance (docs/RESULTS.md, "Paid for speed").
        # The chosen part is refitted on count_matrix's float64 counts.
        matrices = {analyzer: sparse.csr_matrix((counts.data.astype(np.float32), counts.indices, counts.indptr),
                                                shape=counts.shape) for analyzer, counts in matrices.items()}
    stages = [full_grid] if grid == "full" else [lambda: _stages(None), lambda: _stages(best.features)]
    best = None
    rank = {choice.describe(): index for index, choice in enumerate(full_grid())}
    for stage in stages:
        choices = stage()
        for choice, result in zip(choices, _score(choices, matrices, targets, splits, seed)):
            scored[choice.describe()] = (choice, *result)
        # The best score; of equal ones, the first in the grid's order (max keeps the first it meets).
        best = max(sorted(scored.values(), key=lambda entry: rank[entry[0].describe()]),
                   key=lambda entry: entry[1])[0]
    return best, scored[best.describe()][2], {name: round(score, 4) for name, (_, score, _) in scored.items()}


def cross_validate(matrices, targets, folds: int, seed: int, grid: str = "full"):
    """:func:`search` over stratified ``folds`` of every row, in the given order."""
    every = Plan("cross-validation", np.arange(len(targets)), folds, "")
    return search(matrices, targets, splits_of(every, targets, 0), seed, grid)


def _score(choices, matrices, targets, splits, seed: int) -> list:
    """Per choice, ``(mean macro-F1 over the splits, held-out logits [rows, outputs])``.

    One task per feature set and split computes its TF-IDF once and fits each of ``choices`` with those features;
    the tasks run in threads where memory allows (:mod:`textclf.training.fit_threads`).
    """
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.metrics import f1_score

    classes = int(targets.max()) + 1
    outputs = 1 if classes == 2 else classes
    features_names = list(dict.fromkeys(choice.features for choice in choices))
    # The costliest feature sets first (n-grams counted, which Newton-CG's time follows), so no thread is left
    # alone with a long fit at the end.
    cost = {name: sum(matrices[analyzer].nnz for analyzer in FEATURE_SETS[name]) for name in features_names}
    tasks = [(name, split) for name in sorted(features_names, key=lambda name: -cost[name])
             for split in range(len(splits))]

    def one(task):
        name, split = task
        fit_rows, held_rows = splits[split]
        features, _ = features_of(matrices, FEATURE_SETS[name], fit_rows)
        return [logits_of(fit(choice, features[fit_rows], targets[fit_rows], classes, seed), features[held_rows])
                for choice in choices if choice.features == name]

    # The fits' columns: n-grams in MIN_ROWS of the rows at least (a bound on those of any fit's rows; the count
    # matrices' own columns are up to 5 times as many and once held news_source's search to one thread).
    kept = {analyzer: int(np.count_nonzero(np.bincount(matrices[analyzer].indices,
                                                       minlength=matrices[analyzer].shape[1]) >= MIN_ROWS))
            for analyzer in {a for name in features_names for a in FEATURE_SETS[name]}}
    columns = max(sum(kept[analyzer] for analyzer in FEATURE_SETS[name]) for name in features_names)
    with ThreadPoolExecutor(parallel_fits(len(tasks), columns * outputs), initializer=yield_to_training) as pool:
        done = dict(zip(tasks, pool.map(one, tasks)))
    results = []
    for choice in choices:
        index = [other for other in choices if other.features == choice.features].index(choice)
        held_out, scores = np.zeros((len(targets), outputs), np.float32), []
        for split, (_, held_rows) in enumerate(splits):
            logits = done[choice.features, split][index]
            held_out[held_rows] = logits  # Each row is held out by one split at most.
            scores.append(f1_score(targets[held_rows], predicted_classes(logits), average="macro"))
        results.append((float(np.mean(scores)), held_out))
    return results
