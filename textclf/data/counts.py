"""The statistics a run derives from its training rows, computed from histograms (``{value: rows}``).

``max_len``, the length buckets and the class weights are computed here for
rows in memory and streamed rows alike: a streamed run never holds one value
per row, and a histogram is bounded by the number of distinct values.  The
results equal NumPy's percentile/quantile and scikit-learn's "balanced"
weights on the full arrays (``tests/test_counts.py`` checks them against those).
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


def max_len_of(config, lengths: dict) -> int:
    """``config.max_len``, or the ``max_len_percentile`` of the token counts in ``lengths``, within ``max_len_limit``.

    Args:
        config: The settings.
        lengths: ``{token count: rows}`` of the training rows.
    """
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
        raise ValueError(f"class_weight 'balanced' needs training rows of every class; no training row has "
                         f"{', '.join(map(repr, missing))} (all went to validation)")
    total = sum(label_counts[name] for name in classes)
    return {index: total / (len(classes) * label_counts[name]) for index, name in enumerate(classes)}


def bucket_boundaries(lengths: dict, max_len: int, buckets: int = 10) -> list[int]:
    """Upper length bounds (exclusive) that split the rows into about ``buckets`` equally full length buckets.

    Args:
        lengths: ``{token count: rows}``; counts are clipped to ``1..max_len`` as the batches hold them.
        max_len: The run's ``max_len``.
        buckets: How many buckets to aim for.

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
