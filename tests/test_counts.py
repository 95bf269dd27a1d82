"""Statistics from histograms (textclf.data.counts) equal NumPy's and scikit-learn's on the full arrays."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight

from textclf import TrainConfig
from textclf.data.counts import balanced_class_weights, bucket_boundaries, histogram_quantiles, max_len_of


def numpy_bucket_boundaries(lengths, buckets=10):
    """The rule on one value per row: bounds at the deciles, rounded up, + 1 (exclusive upper bounds)."""
    quantiles = np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1]) if len(lengths) else []
    return sorted({int(np.ceil(q)) + 1 for q in quantiles if q >= 1})


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 60), min_size=1, max_size=300),
       percentile=st.floats(0.01, 100.0, allow_nan=False))
def test_histogram_statistics_equal_numpy_on_the_rows(values, percentile):
    histogram = {value: values.count(value) for value in set(values)}
    quantiles = np.linspace(0, 1, 11)[1:-1]
    assert histogram_quantiles(histogram, quantiles).tolist() == np.quantile(values, quantiles).tolist()
    assert histogram_quantiles(histogram, [np.true_divide(percentile, 100)])[0] == np.percentile(values, percentile)
    config = TrainConfig(max_len_percentile=percentile, max_len_limit=50)
    expected = min(max(math.ceil(np.percentile(values, percentile)), 1), 50)
    assert max_len_of(config, histogram) == expected
    assert bucket_boundaries(histogram, 20) == numpy_bucket_boundaries(np.clip(values, 1, 20))


def test_max_len_and_buckets_on_known_values():
    assert max_len_of(TrainConfig(max_len=7), {100: 3}) == 7  # A given max_len is kept.
    assert max_len_of(TrainConfig(max_len_percentile=50), {2: 1, 4: 1, 9: 1}) == 4
    assert max_len_of(TrainConfig(max_len_percentile=100, max_len_limit=5), {2: 1, 9: 1}) == 5
    assert max_len_of(TrainConfig(), {}) == 1
    assert bucket_boundaries({1: 50, 10: 50}, max_len=20, buckets=2) == [7]  # median 5.5 → 6, + 1
    assert bucket_boundaries(dict.fromkeys(range(1, 101), 1), max_len=200, buckets=4) == [27, 52, 77]
    assert bucket_boundaries({0: 3, 500: 1}, max_len=8, buckets=2) == [2]  # Clipped to 1..8 first: median 1.
    assert bucket_boundaries({}, max_len=8) == []


def test_balanced_class_weights_equal_scikit_learns():
    labels = ["b"] * 5 + ["a"] * 2 + ["c"] * 13
    counts = {name: labels.count(name) for name in set(labels)}
    expected = compute_class_weight("balanced", classes=np.array(["a", "b", "c"]), y=np.array(labels))
    assert balanced_class_weights(counts, ["a", "b", "c"]) == pytest.approx(dict(enumerate(expected)))
    assert balanced_class_weights({"a": 3, "b": 1}, ["a", "b"]) == {0: 4 / 6, 1: 2.0}
    with pytest.raises(ValueError, match=r"needs training rows of every class; no training row has 'd'"):
        balanced_class_weights(counts, ["a", "b", "c", "d"])
