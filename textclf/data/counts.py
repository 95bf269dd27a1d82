"""Statistics from counts instead of rows, for streamed data (see :mod:`textclf.data.streaming`).

The in-memory path computes ``max_len``, the length buckets and the class
weights from one value per row; a streamed run keeps histograms instead
(``{value: rows}``), bounded by the number of distinct values, and gets the
same numbers from them: ``tests/test_streaming.py`` checks them against the
NumPy and scikit-learn functions the in-memory path calls.
"""

from __future__ import annotations

import collections
import math

import numpy as np


def histogram_quantiles(histogram: dict, quantiles) -> np.ndarray:
    """``np.quantile(values, quantiles)`` (linear method) of the values a ``{value: count}`` histogram holds.

    Exact: the same arithmetic as NumPy's on the two neighbouring order
    statistics, without building the array of all values.

    Example:
        >>> histogram_quantiles({1: 2, 5: 1}, [0.5, 1.0])
        array([1., 5.])
    """
    values = np.array(sorted(histogram), dtype=np.int64)
    ends = np.cumsum([histogram[value] for value in values.tolist()])  # Order statistics up to each value.
    quantiles = np.asarray(quantiles, dtype=np.float64)
    virtual = (int(ends[-1]) - 1) * quantiles
    previous = np.floor(virtual)
    following = previous + 1
    last = int(ends[-1]) - 1
    previous[virtual >= last], following[virtual >= last] = last, last
    below = np.searchsorted(ends, previous.astype(np.int64), side="right")
    above = np.searchsorted(ends, following.astype(np.int64), side="right")
    low, high = values[below], values[above]
    gamma = virtual - previous
    difference = high - low
    result = low + difference * gamma
    # NumPy's _lerp: from the upper neighbour when gamma >= 0.5, for the same rounding.
    return np.where(gamma >= 0.5, high - difference * (1 - gamma), result)


def streamed_max_len(config, lengths: dict) -> int:
    """``fitting.resolve_max_len`` from a histogram of sequence lengths (the same value, computed exactly)."""
    if config.max_len is not None:
        return config.max_len
    if not lengths:
        return 1
    chosen = int(math.ceil(histogram_quantiles(lengths, [np.true_divide(config.max_len_percentile, 100)])[0]))
    return int(min(max(chosen, 1), config.max_len_limit))


def balanced_class_weights(label_counts: dict, classes) -> dict[int, float]:
    """``fitting.class_weights`` (scikit-learn's "balanced") from per-class row counts."""
    missing = [name for name in classes if not label_counts.get(name)]
    if missing:
        raise ValueError(f"class_weight 'balanced' needs training rows of every class; no training row has "
                         f"{', '.join(map(repr, missing))} (all went to validation)")
    total = sum(label_counts[name] for name in classes)
    return {index: total / (len(classes) * label_counts[name]) for index, name in enumerate(classes)}


def streamed_bucket_boundaries(lengths: dict, max_len: int, buckets: int = 10) -> list[int]:
    """``textclf.train.batches.bucket_boundaries`` of the training rows' lengths, from their histogram."""
    clipped: collections.Counter = collections.Counter()
    for length, count in lengths.items():
        clipped[min(max(length, 1), max_len)] += count  # As EncodedTexts stores them: at least 1, truncated.
    if not clipped:
        return []
    quantiles = histogram_quantiles(clipped, np.linspace(0, 1, buckets + 1)[1:-1])
    return sorted({int(np.ceil(q)) + 1 for q in quantiles if q >= 1})
