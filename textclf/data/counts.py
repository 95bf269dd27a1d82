"""``max_len``, length buckets and class weights from histograms (``{value: rows}``), in memory and streamed alike.

A streamed run never holds one value per row; a histogram is bounded by the distinct values.  The results equal
NumPy's quantile and scikit-learn's "balanced" weights on the full arrays (``tests/test_counts.py`` checks).
"""

from __future__ import annotations

import collections
import math

import numpy as np
from textclf.errors import TextclfError


def histogram_quantiles(histogram: dict, quantiles) -> np.ndarray:
    """``np.quantile(values, quantiles)`` (linear method, ``quantiles`` in [0, 1]) of a ``{value: count}`` histogram.

    Exact: NumPy's arithmetic on the two neighbouring order statistics, without the array of all values.

    Example:
        >>> histogram_quantiles({1: 2, 5: 1}, [0.5, 1.0])
        array([1., 5.])
    """
    values = np.array(sorted(histogram), dtype=np.int64)
    ends = np.cumsum([histogram[value] for value in values.tolist()])  # Order statistics up to each value.
    last = int(ends[-1]) - 1
    virtual = last * np.asarray(quantiles, dtype=np.float64)
    previous = np.floor(virtual)
    low = values[np.searchsorted(ends, previous.astype(np.int64), side="right")]
    high = values[np.searchsorted(ends, np.minimum(previous + 1, last).astype(np.int64), side="right")]
    gamma = virtual - previous
    difference = high - low
    # NumPy's _lerp: from the upper neighbour when gamma >= 0.5, for the same rounding.
    return np.where(gamma >= 0.5, high - difference * (1 - gamma), low + difference * gamma)


def max_len_of(config, lengths: dict) -> int:
    """``config.max_len``, or the ``max_len_percentile`` of ``lengths`` (``{token count: training rows}``), at most
    ``max_len_limit``."""
    if config.max_len is not None:
        return config.max_len
    if not lengths:
        return 1
    chosen = int(math.ceil(histogram_quantiles(lengths, [np.true_divide(config.max_len_percentile, 100)])[0]))
    return int(min(max(chosen, 1), config.max_len_limit))


def balanced_class_weights(label_counts: dict, classes) -> dict[int, float]:
    """``{class index: weight}``, scikit-learn's "balanced" rule ``rows / (classes * rows of the class)``.

    Example:
        >>> balanced_class_weights({"a": 3, "b": 1}, ["a", "b"])
        {0: 0.6666666666666666, 1: 2.0}
    """
    missing = [name for name in classes if not label_counts.get(name)]
    if missing:
        raise TextclfError(f"class_weight 'balanced' needs training rows of every class; no training row has "
                         f"{', '.join(map(repr, missing))} (all went to validation)")
    total = sum(label_counts[name] for name in classes)
    return {index: total / (len(classes) * label_counts[name]) for index, name in enumerate(classes)}


def bucket_boundaries(lengths: dict, max_len: int, buckets: int = 10) -> list[int]:
    """Upper length bounds (exclusive) that split the rows into about ``buckets`` equally full length buckets.

    ``lengths`` is ``{token count: rows}``; counts are clipped to ``1..max_len`` as the batches hold them.

    Example:
        >>> bucket_boundaries({1: 50, 10: 50}, max_len=20, buckets=2)
        [7]
    """
    clipped: collections.Counter = collections.Counter()
    for length, count in lengths.items():
        clipped[min(max(length, 1), max_len)] += count  # As EncodedTexts stores them: at least 1, truncated.
    if not clipped:
        return []
    quantiles = histogram_quantiles(clipped, np.linspace(0, 1, buckets + 1)[1:-1])
    return sorted({int(np.ceil(q)) + 1 for q in quantiles if q >= 1})
