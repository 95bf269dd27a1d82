"""Fitting the wide TF-IDF branch (``TrainConfig.wide="tfidf"``) once the recurrent model has trained.

Features are sublinear, L2-normalised TF-IDF (``TfidfVectorizer(sublinear_tf=True)``'s rule) of each id and of each
2-gram of ids found in at least 2 training rows (the OOV id left out), computed on ids so the graph can repeat it
(:class:`textclf.model.layers.TfidfLogits`).  A logistic regression (L-BFGS, the baseline's solver: SGD inside
Keras does not reach its solution on small data) is fitted on them; the blend ``activation(a * recurrent logits +
b * wide logits + c)`` (:class:`textclf.model.layers.Blend`) is fitted by class-balanced maximum likelihood on the
validation rows.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from textclf.log import log
from textclf.model.factory import build_model, compiled_call
from textclf.training.batches import EncodedTexts

# 2-grams in fewer training rows than this are left out (the baseline's min_df).
MIN_ROWS = 2
# The linear part's regularisation (LogisticRegression C).  The baseline's C=4 suits scikit-learn's tokens; on these
# features (every vocabulary word, one-letter words too) 5-fold cross-validation on the training rows chose 8-16 by
# log-loss for rt_polarity at 500 to 10,246 rows, and 16 did at least as well as 4 on held-out rows of all three
# public sets (docs/RESULTS.md).  Choosing C on the validation rows instead was no better in the blended model.
C = 16.0
# The linear part is fitted on at most this many rows, drawn at random: its features and scikit-learn's solver
# grow with the rows (bench/scaling.py: 4.0 GB peak at 1M rows of rt_polarity against 1.1 GB at 100k), while
# the recurrent model, which trains on every row, needs the branch least on large data.
MAX_ROWS = 200_000


def _pairs(values: np.ndarray, lengths: np.ndarray, vocabulary_size: int):
    """``(row, key)`` of every 2-gram: ``key = first * vocabulary_size + second``, within rows."""
    row_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    same_row = row_of[:-1] == row_of[1:]
    keys = values[:-1].astype(np.int64) * vocabulary_size + values[1:]
    return row_of[:-1][same_row], keys[same_row]


def bigram_keys(values: np.ndarray, lengths: np.ndarray, vocabulary_size: int, unknown=None) -> np.ndarray:
    """Sorted int64 keys of the 2-grams found in at least :data:`MIN_ROWS` rows, none with the ``unknown`` id."""
    rows, keys = _pairs(values, lengths, vocabulary_size)
    if unknown is not None:
        keep = (keys // vocabulary_size != unknown) & (keys % vocabulary_size != unknown)
        rows, keys = rows[keep], keys[keep]
    unique_pairs = np.unique(np.stack([keys, rows]), axis=1)  # One per (key, row).
    found, rows_with = np.unique(unique_pairs[0], return_counts=True)
    return found[rows_with >= MIN_ROWS].astype(np.int64)


def tfidf_features(values, lengths, vocabulary_size: int, keys: np.ndarray, idf=None, unknown=None):
    """``(features, idf)``: the sparse ``[rows, vocabulary_size + len(keys)]`` TF-IDF matrix and the idf used.

    ``values`` and ``lengths`` are the rows' ids, flat, and each row's length; ``idf=None`` computes it from these
    rows (smooth: ``ln((1 + n) / (1 + df)) + 1``), with 0 for the ``unknown`` (OOV) id.  That id stands for every
    word outside the vocabulary, not for a word: as a feature it learned from the few validation-only words of
    the refit and weighed on every test row with new words (the linear part alone on 1,000 rt_polarity rows, mean
    of 3 held-out splits: macro-F1 0.638 with it, 0.648 without at C=4); scikit-learn's TF-IDF skips unknown words.
    """
    from scipy import sparse
    from sklearn.preprocessing import normalize

    values = np.asarray(values, dtype=np.int64)
    row_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    pair_rows, pair_keys = _pairs(values, np.asarray(lengths), vocabulary_size)
    position = np.searchsorted(keys, pair_keys).clip(max=max(len(keys) - 1, 0))
    found = (keys[position] == pair_keys) if len(keys) else np.zeros(len(pair_keys), dtype=bool)
    rows = np.concatenate([row_of, pair_rows[found]])
    columns = np.concatenate([values, position[found] + vocabulary_size])
    shape = (len(lengths), vocabulary_size + len(keys))
    counts = sparse.coo_matrix((np.ones(len(rows), dtype=np.float64), (rows, columns)), shape=shape).tocsr()
    counts.sum_duplicates()
    if idf is None:
        rows_with = np.bincount(counts.indices, minlength=shape[1])
        idf = np.log((1 + shape[0]) / (1 + rows_with)) + 1.0
        if unknown is not None:
            idf[unknown] = 0.0  # The graph layer reads the same idf: the id counts for nothing there too.
    counts.data = (1.0 + np.log(counts.data)) * np.asarray(idf, dtype=np.float64)[counts.indices]
    counts.eliminate_zeros()
    return normalize(counts), np.asarray(idf, dtype=np.float32)


def at_most(values, lengths, targets, seed: int, limit: int = MAX_ROWS):
    """``(values, lengths, targets)`` of about ``limit`` rows drawn without replacement, in their order.

    All rows when there are no more than ``limit``; else ``limit`` drawn rows plus, for a class none of them has,
    its first row (the linear model needs every class).
    """
    if len(lengths) <= limit:
        return values, lengths, targets
    chosen = np.random.default_rng(seed).choice(len(lengths), limit, replace=False)
    missing = np.setdiff1d(np.unique(targets), targets[chosen])
    chosen = np.union1d(chosen, [np.flatnonzero(targets == label)[0] for label in missing]).astype(np.int64)
    subset = EncodedTexts(values, lengths).subset(chosen)
    return subset.values, subset.lengths, targets[chosen]


def _recurrent_logits(recurrent: np.ndarray) -> np.ndarray:
    """The recurrent head's probabilities as the logits :class:`textclf.model.layers.Blend` scales (float64):
    ``log(p / (1 - p))`` for one sigmoid unit, ``log(p)`` for a softmax (logits up to a per-row constant)."""
    probabilities = np.clip(recurrent.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(probabilities) - (np.log1p(-probabilities) if recurrent.shape[1] == 1 else 0.0)


def _blend_weights(recurrent: np.ndarray, wide: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scales [2], bias [outputs])`` of the blend maximising the class-balanced likelihood of ``targets``.

    Each validation row weighs ``rows / (classes * rows of its class)``, as in the linear part and in macro-F1:
    an unweighted bias pulls the decisions towards the larger class, and a bias fitted for the 80%-row linear
    model then shifted the refitted one's threshold (rt_polarity, 1,000 rows, split 0: 0.640 against 0.657
    balanced).  Scales stay >= 0: both parts are trained to predict the labels, so a negative scale (inverting
    one) only fits the noise of a few hundred validation rows (it did: -0.275 x recurrent at 1,000 rt_polarity rows).
    """
    from scipy.optimize import minimize
    from sklearn.utils.class_weight import compute_sample_weight

    outputs = recurrent.shape[1]
    logits = _recurrent_logits(recurrent)
    weights = compute_sample_weight("balanced", targets)  # The linear part's class_weight="balanced", per row.

    def loss(parameters):
        z = parameters[0] * logits + parameters[1] * wide + parameters[2:]
        if outputs == 1:
            losses = np.logaddexp(0.0, z[:, 0]) - targets * z[:, 0]
        else:
            z = z - z.max(axis=1, keepdims=True)
            losses = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), targets]
        return float(np.average(losses, weights=weights))

    start = np.concatenate([[1.0, 0.0], np.zeros(outputs)])
    bounds = [(0.0, None), (0.0, None)] + [(None, None)] * outputs
    best = minimize(loss, start, method="L-BFGS-B", bounds=bounds).x
    return best[:2].astype(np.float32), best[2:].astype(np.float32)


def _linear(features, targets, classes, seed) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel [features, outputs], bias [outputs])`` of the (class-balanced) logistic regression on ``features``."""
    from sklearn.linear_model import LogisticRegression

    # Classes weighted inversely to their frequency: macro-F1, what textclf reports and the bench compares, weighs
    # every class alike (the branch alone, held out: rt_polarity 500 rows +0.017, convention_party +0.14, rt_polarity
    # all rows level; docs/RESULTS.md).
    linear = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed).fit(features, targets)
    if len(linear.classes_) != len(classes):
        raise ValueError(f"`wide` needs training rows of every class; the training rows hold "
                         f"{len(linear.classes_)} of {len(classes)}")
    return linear.coef_.T.astype(np.float32), linear.intercept_.astype(np.float32)


def _combined(model, config, vocabulary_size, classes, part, scales, blend_bias):
    """``build_model`` with the branch, the recurrent weights copied from ``model``, the branch's set."""
    config = config.replace(wide_bigrams=len(part.keys))
    combined = build_model(config, vocabulary_size, len(classes))
    for layer in model.layers:
        if layer.weights and layer.name not in ("tfidf_logits", "blend"):  # Only the recurrent part's.
            combined.get_layer(layer.name).set_weights(layer.get_weights())
    combined.get_layer("tfidf_logits").set_weights([part.keys, part.idf, part.kernel, part.bias])
    combined.get_layer("blend").set_weights([scales, blend_bias])
    return combined, config


@dataclasses.dataclass
class LinearPart:
    """A fitted linear part: 2-gram ``keys``, ``idf`` [ids + 2-grams], ``kernel`` [features, outputs], ``bias``."""

    keys: np.ndarray
    idf: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray


@dataclasses.dataclass
class LinearFits:
    """What the two logistic regressions give the blend.

    ``first``: fitted on the training rows; ``valid_logits`` [validation rows, outputs]: its logits on the
    validation rows (the blend is fitted on them); ``final``: refitted on training and validation rows together.
    """

    first: LinearPart
    valid_logits: np.ndarray
    final: LinearPart


def _fit_part(values, lengths, targets, size, unknown, classes, seed) -> LinearPart:
    """The linear part fitted on these rows (at most :data:`MAX_ROWS` of them)."""
    values, lengths, targets = at_most(values, lengths, targets, seed)
    keys = bigram_keys(values, lengths, size, unknown)
    features, idf = tfidf_features(values, lengths, size, keys, unknown=unknown)
    kernel, bias = _linear(features, targets, classes, seed)
    return LinearPart(keys, idf, kernel, bias)


def fit_linear(tokenizer, classes, train_rows, valid_rows, seed: int) -> LinearFits:
    """Both linear fits.  They need only the rows, not the recurrent model (see :class:`LinearFitsInBackground`)."""
    size, unknown = tokenizer.vocabulary_size, tokenizer.oov_index
    (train_values, train_lengths), (valid_values, valid_lengths) = train_rows.id_rows(), valid_rows.id_rows()
    train_targets, valid_targets = train_rows.class_indices(), valid_rows.class_indices()
    all_lengths = np.concatenate([train_lengths, valid_lengths])
    if len(all_lengths) > MAX_ROWS:
        log(f"wide branch: its linear part is fitted on at most {MAX_ROWS:,} rows drawn at random (of "
            f"{len(train_lengths):,} training rows, and of {len(all_lengths):,} with the validation rows for the "
            "refit), so memory stays bounded")
    first = _fit_part(train_values, train_lengths, train_targets, size, unknown, classes, seed)
    valid_features, _ = tfidf_features(valid_values, valid_lengths, size, first.keys, first.idf)
    final = _fit_part(np.concatenate([train_values, valid_values]), all_lengths,
                      np.concatenate([train_targets, valid_targets]), size, unknown, classes, seed)
    return LinearFits(first, np.asarray(valid_features @ first.kernel + first.bias, dtype=np.float32), final)


class LinearFitsInBackground:
    """:func:`fit_linear` in a thread, started before the recurrent model trains; :meth:`result` waits for it.

    The fits need only the tokenized rows, so they overlap the epochs: scikit-learn's solver runs mostly on one
    core, and the recurrent loop's small per-step products do not keep every core busy (news_source: the two
    fits took 60.5 s after 74.2 s of epochs, one after the other; docs/PERFORMANCE.md).  A daemon thread, so an
    interrupted run does not wait for it.
    """

    def __init__(self, tokenizer, classes, train_rows, valid_rows, seed: int):
        self._fits, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(tokenizer, classes, train_rows, valid_rows, seed),
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


def blended(recurrent: np.ndarray, wide: np.ndarray, scales: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[rows, classes]`` probabilities of :class:`textclf.model.layers.Blend`, in NumPy (the binary head's
    one sigmoid ``p`` as ``[1 - p, p]``, as ``class_probabilities`` gives it)."""
    z = scales[0] * _recurrent_logits(recurrent) + scales[1] * wide + bias
    if recurrent.shape[1] == 1:
        positive = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        return np.concatenate([1.0 - positive, positive], axis=1)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_wide(model, config, tokenizer, classes, valid_rows, linear: LinearFits):
    """``(validation_probabilities, model, config)``: the trained recurrent ``model`` with the wide branch beside it.

    The blend is fitted on the validation rows with the linear part fitted on the training rows alone;
    ``validation_probabilities`` [validation rows, outputs] are that blend's outputs (the validation metrics are
    theirs).  ``model`` holds the linear part refitted on training and validation rows together, as the baseline
    learns from every row, with the same blend; ``config`` has ``wide_bigrams`` resolved.
    """
    size = tokenizer.vocabulary_size
    call = compiled_call(model)
    recurrent = np.concatenate([np.asarray(call(ids)) for ids, _ in valid_rows.batches(1024)])
    scales, blend_bias = _blend_weights(recurrent, linear.valid_logits, valid_rows.class_indices())
    final, config = _combined(model, config, size, classes, linear.final, scales, blend_bias)
    log(f"wide branch: {size - 1} ids and {len(linear.final.keys)} 2-grams, refitted on training and validation "
        f"rows; blend fitted on the validation rows: {scales[0]:.3f} x recurrent + {scales[1]:.3f} x TF-IDF logits")
    return blended(recurrent, linear.valid_logits, scales, blend_bias), final, config
