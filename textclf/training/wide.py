"""Fitting the wide TF-IDF branch (``TrainConfig.wide="tfidf"``): a linear model on n-grams of the raw text.

The branch is the strongest linear baseline a careful scikit-learn user builds, chosen on the user's own rows:
the features (word 1-2-grams, character ``char_wb`` n-grams, or both), ``C`` and class weighting are picked by
macro-F1 on held-out rows (:mod:`textclf.training.linear_choice`: stratified k-fold cross-validation over the
training and validation rows where it is affordable, else the validation rows), then a logistic regression
(Newton-CG) with that choice is refitted on every row.  The n-grams are :mod:`textclf.text.ngrams`' hashed keys, so
the export's graph (:class:`textclf.model.layers.NgramTfidfLogits`) computes the same features from raw text.  The
blend with the recurrent part (:mod:`textclf.training.blend`) is fitted on the validation rows' logits from linear
models that did not see those rows.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from textclf.errors import TextclfError
from textclf.log import log
from textclf.model.factory import build_model, compiled_call
from textclf.training.blend import MAX_RECURRENT_SHORTFALL, blended, choose_blend, temperature
from textclf.training.fit_threads import one_blas_thread, yield_to_training
from textclf.training.linear_choice import FALLBACK, FEATURE_SETS, Choice, features_of, fit, plan, search, splits_of

# The linear part is fitted on at most this many rows, drawn at random: its features and scikit-learn's solver
# grow with the rows, while the recurrent model, which trains on every row, needs the branch least on large data.
MAX_ROWS = 200_000
# Rows whose n-grams are counted to estimate the cost of a search (linear_choice.plan).
COST_SAMPLE_ROWS = 128
ANALYZERS = sorted({analyzer for analyzers in FEATURE_SETS.values() for analyzer in analyzers})


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


class NgramCounts:
    """n-gram count matrices of ``texts``' rows, per analyzer and row set, each counted once: a set within the
    largest one counted so far is sliced from it (its extra columns hold no count, so the fits drop them)."""

    def __init__(self, texts):
        self.texts, self._done, self._largest = texts, {}, {}

    def __call__(self, analyzer, rows: np.ndarray):
        """``(counts [len(rows), keys], keys)`` of ``rows``' texts (``rows`` sorted)."""
        from textclf.text.ngrams import count_matrix

        key = (analyzer, rows.tobytes())
        if key not in self._done:
            largest = self._largest.get(analyzer)
            if largest is not None and np.isin(rows, largest[0]).all():
                self._done[key] = largest[1][np.searchsorted(largest[0], rows)], largest[2]
            else:
                self._done[key] = count_matrix([self.texts[row] for row in rows], analyzer)
                if largest is None or len(rows) > len(largest[0]):
                    self._largest[analyzer] = (rows, *self._done[key])
        return self._done[key]

    def cost_per_row(self, rows: np.ndarray, outputs: int, seed: int) -> float:
        """Distinct n-grams per row over every analyzer of the grid, times ``outputs``, from a random sample."""
        sample = np.sort(np.random.default_rng(seed).permutation(rows)[:COST_SAMPLE_ROWS])
        from textclf.text.ngrams import count_matrix

        texts = [self.texts[row] for row in sample]
        return sum(count_matrix(texts, analyzer)[0].nnz for analyzer in ANALYZERS) / len(sample) * outputs


def _fit_part(counts, rows, targets, choice: Choice, seed: int, order=None) -> LinearPart:
    """The linear part with ``choice`` fitted on ``rows``, taken in the order of ``order`` where given (the
    solver's sums, hence its last digits, follow the rows' order)."""
    matrices = {analyzer: counts(analyzer, rows) for analyzer in choice.analyzers}
    ranked = np.arange(len(rows)) if order is None else np.argsort(order, kind="stable")
    features, kept = features_of({a: m for a, (m, _) in matrices.items()}, choice.analyzers, ranked)
    linear = fit(choice, features[ranked], targets[rows][ranked], int(targets.max()) + 1, seed)
    return LinearPart(choice.analyzers, [matrices[analyzer][1][columns] for analyzer, (columns, _) in
                                         zip(choice.analyzers, kept)],
                      [idf for _, idf in kept], linear.coef_.T.astype(np.float32),
                      linear.intercept_.astype(np.float32))


@dataclasses.dataclass
class LinearFits:
    """What the linear fits give the blend and the model.

    ``valid_logits`` [validation rows, outputs]: logits of the chosen linear model from fits that did not see the
    row; ``final``: the chosen model refitted on training and validation rows together; ``report``: the choice and
    how it was made, for ``run.json``; ``temperature``: the factor that calibrates the linear part's logits, from
    the search's held-out logits (1.0 without a search).
    """

    valid_logits: np.ndarray
    final: LinearPart
    report: dict
    temperature: float = 1.0


def fit_linear(classes, train_rows, valid_rows, seed: int, positions=None, on_validation=None) -> LinearFits:
    """Chooses and fits the linear part on the training and validation rows' texts (not the recurrent model).

    ``positions``: each row's place in the user's file (training rows, then validation rows), so the
    cross-validation's folds and the final fit see the rows in the file's order, as the strongest baseline does.
    ``on_validation(valid_logits, temperature)`` is called as soon as those are known, before the final refit on
    every row (early stopping needs only them).
    """
    with one_blas_thread():  # While the fits run.
        return _fit_linear(classes, train_rows, valid_rows, seed, positions, on_validation)


def _fit_linear(classes, train_rows, valid_rows, seed: int, positions, on_validation) -> LinearFits:
    """:func:`fit_linear`'s work."""
    texts = list(train_rows.texts) + list(valid_rows.texts)
    targets = np.concatenate([train_rows.class_indices(), valid_rows.class_indices()])
    if len(np.unique(targets)) != len(classes):
        raise TextclfError(f"`wide` needs rows of every class; the training rows hold {len(np.unique(targets))} "
                           f"of {len(classes)}")
    rows = subsample_rows(len(texts), targets, seed)
    if len(rows) < len(texts):
        log(f"wide branch: its linear part is fitted on {len(rows):,} of {len(texts):,} rows drawn at random, "
            "so memory stays bounded")
    counts, train_count = NgramCounts(texts), int(np.count_nonzero(rows < len(train_rows)))
    outputs = 1 if len(classes) == 2 else len(classes)
    chosen = plan(targets[rows], train_count, counts.cost_per_row(rows, outputs, seed), seed)
    order = None if positions is None else positions[rows]  # The rows' places in the file.
    held, scale = {}, None  # held: position in texts -> logits of a linear model that did not see the row
    if chosen.method == "fixed":
        choice, how, scale = Choice(*FALLBACK), {"method": f"fixed: {chosen.why}"}, 1.0
    else:
        picked = rows[chosen.rows]
        splits = splits_of(chosen, targets[rows], train_count, order)
        matrices = {analyzer: counts(analyzer, picked)[0] for analyzer in ANALYZERS}
        choice, logits, scores = search(matrices, targets[picked], splits, seed, chosen.grid)
        out = np.unique(np.concatenate([held_rows for _, held_rows in splits]))
        if len(picked) == len(rows):  # Else fits on fewer rows than the final one: not the blend's inputs.
            held = dict(zip(picked[out].tolist(), logits[out]))
            scale = temperature(logits[out], targets[picked][out])
        how = {"method": chosen.why, "scores": scores}
    refit = []  # The final part, fitted once, when first needed.

    def final():
        if not refit:
            refit.append(_fit_part(counts, rows, targets, choice, seed, order))
        return refit[0]

    valid_logits = _valid_logits(held, counts, rows, train_count, targets, choice, final, valid_rows, seed)
    if scale is None:  # The search drew rows: calibrated on the refit's logits, as the blend sees them.
        scale = temperature(valid_logits, targets[len(train_rows):])
    if on_validation is not None:
        on_validation(valid_logits, scale)
    report = {"features": choice.features, "C": choice.C, "class_weight": choice.class_weight or "none", **how,
              "temperature": round(scale, 4)}
    log(f"wide branch: {choice.features}, C={choice.C:g}, class weight {report['class_weight']} "
        f"({how['method']})")
    return LinearFits(valid_logits, final(), report, scale)


def _valid_logits(held, counts, rows, train_count, targets, choice, final, valid_rows, seed) -> np.ndarray:
    """The validation rows' logits from linear models that did not see them: the search's where it held the row
    out, else ``choice`` fitted on the training rows of ``rows``.  Rows outside ``rows`` (more than
    :data:`MAX_ROWS`) get those of ``final()``, the part that saw none of them."""
    first = len(targets) - len(valid_rows)  # Position of the first validation row in texts.
    wanted = [position for position in rows[train_count:].tolist() if position not in held]
    if wanted:
        part = _fit_part(counts, rows[:train_count], targets, choice, seed)
        held.update(zip(wanted, _part_logits(part, [counts.texts[position] for position in wanted])))
    classes = int(targets.max()) + 1
    logits = np.zeros((len(valid_rows), 1 if classes == 2 else classes), np.float32)
    missing = [index for index in range(len(valid_rows)) if first + index not in held]
    if missing:
        logits[missing] = _part_logits(final(), [counts.texts[first + index] for index in missing])
    for index in range(len(valid_rows)):
        if first + index in held:
            logits[index] = held[first + index]
    return logits


def _part_logits(part: LinearPart, texts) -> np.ndarray:
    """``part``'s logits of ``texts`` computed by the export's layer."""
    import tensorflow as tf

    from textclf.model.layers import NgramTfidfLogits

    layer = NgramTfidfLogits(part.analyzers, [len(keys) for keys in part.keys], part.kernel.shape[1])
    layer.set_weights(part.weights())
    return np.concatenate([np.asarray(layer(tf.constant(texts[start:start + 1024], tf.string)), dtype=np.float32)
                           for start in range(0, len(texts), 1024)])


class LinearFitsInBackground:
    """:func:`fit_linear` in a thread, started before the recurrent model trains; :meth:`validation` waits for the
    validation rows' logits, :meth:`result` for every fit.

    The fits need only the rows' texts, so they overlap the epochs: scikit-learn's solver runs mostly on one
    core, and the recurrent loop's small per-step products do not keep every core busy.  The refit on every row
    runs while training goes on.  A daemon thread, so an interrupted run does not wait for it.
    """

    def __init__(self, classes, train_rows, valid_rows, seed: int, positions=None):
        self._fits, self._error, self._validation = None, None, None
        self._ready = threading.Event()
        # TensorFlow's worker threads are started by the thread that starts its runtime, and keep its nice value:
        # started here, not in the nicer thread below, they run the epochs at the training thread's priority.
        import tensorflow as tf

        tf.config.list_logical_devices()
        self._thread = threading.Thread(target=self._run, args=(classes, train_rows, valid_rows, seed, positions),
                                        name="textclf-wide", daemon=True)
        self._thread.start()

    def _run(self, *arguments):
        yield_to_training()  # This thread ends with the fits.
        try:
            self._fits = fit_linear(*arguments, on_validation=self._validated)
        except BaseException as error:  # Raised again in the caller's thread by validation() and result().
            self._error = error
        self._ready.set()

    def _validated(self, valid_logits, scale):
        self._validation = valid_logits, scale
        self._ready.set()

    def ready(self) -> bool:
        """Whether :meth:`validation` would answer (or raise) without waiting."""
        return self._ready.is_set()

    def validation(self) -> tuple:
        """``(valid_logits, temperature)`` (:class:`LinearFits`), once known; an error of the fits is raised here."""
        self._ready.wait()
        if self._validation is None:
            raise self._error
        return self._validation

    def result(self) -> LinearFits:
        """The fits, once done; an error of the fits is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._fits


class BlendMonitor:
    """The blend's validation macro-F1 with the recurrent model as it is: early stopping's measure with a wide branch.

    What the model would score if training stopped now; on data where the linear part is far ahead the blend is
    that part alone, the score stays level and training stops after ``patience`` epochs.  :meth:`score` waits for
    the linear part's validation logits, so every run (and a resumed one) stops at the same epoch whatever the
    threads' timing; the loop scores epochs trained meanwhile once they come (:meth:`ready`).
    """

    def __init__(self, linear: LinearFitsInBackground, valid_rows):
        self.linear, self.valid_rows, self.targets = linear, valid_rows, valid_rows.class_indices()

    def __call__(self, model) -> float:
        return self.score(self.outputs(model))

    def outputs(self, model) -> np.ndarray:
        """The recurrent model's outputs on the validation rows, now (what :meth:`score` scores)."""
        call = compiled_call(model)
        return np.concatenate([np.asarray(call(ids)) for ids, _ in self.valid_rows.batches(1024)])

    def ready(self) -> bool:
        """Whether :meth:`score` can answer without waiting for the linear part."""
        return self.linear.ready()

    def score(self, recurrent: np.ndarray) -> float:
        """The blend's validation macro-F1 with the recurrent ``outputs``; waits for the linear part's logits."""
        valid_logits, scale = self.linear.validation()
        return choose_blend(recurrent, valid_logits, self.targets, scale)[2]["blend"]


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
    elif scales[0] == 0.0:
        log(f"wide branch: no blend clearly beats the TF-IDF part alone on the validation rows (macro-F1 "
            f"{parts['tfidf']:.3f}; the recurrent part alone {parts['recurrent']:.3f}): the model is the TF-IDF part "
            "alone")
    elif scales[1] == 0.0:
        log(f"wide branch: the blend fitted on the validation rows gives the TF-IDF part no weight (macro-F1 "
            f"{parts['tfidf']:.3f}; the recurrent part alone {parts['recurrent']:.3f}): the model is the recurrent "
            "part alone")
    final = with_wide(model, config, tokenizer.vocabulary_size, classes, linear.final, scales, blend_bias)
    sizes = ", ".join(f"{kind} {low}-{high}: {len(keys):,}"
                      for (kind, low, high), keys in zip(linear.final.analyzers, linear.final.keys))
    log(f"wide branch: n-grams kept ({sizes}), refitted on training and validation rows; blend fitted on the validation "
        f"rows: {scales[0]:.3f} x recurrent + {scales[1]:.3f} x TF-IDF logits")
    linear.report["blend"] = {"recurrent": round(float(scales[0]), 4), "tfidf": round(float(scales[1]), 4)}
    return blended(recurrent, linear.valid_logits, scales, blend_bias), final, recurrent
