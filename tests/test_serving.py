"""The export's LSTM forward pass equals the Keras model, on both of its paths."""

import numpy as np
import pytest
import tensorflow as tf

from textclf import TrainConfig
from textclf.model.factory import build_model
from textclf.serve.fast_lstm import LSTMInference, supports

VOCABULARY = 40


def random_batch(rows, longest, seed):
    """Right-padded ids ``[rows, longest]`` with lengths 1..longest (at least one row that long), and lengths."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest + 1, size=rows)
    lengths[rng.integers(rows)] = longest
    ids = np.zeros((rows, longest), dtype=np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, VOCABULARY, size=length)
    return ids, lengths.astype(np.int32)


def left_aligned_to_pre_padding(ids, lengths):
    shifted = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        shifted[row, ids.shape[1] - length:] = ids[row, :length]
    return shifted


def keras_and_fast(config, seed, **options):
    tf.keras.utils.set_random_seed(seed)
    model = build_model(config, VOCABULARY, 3, use_cudnn=False)
    # Random biases too, so no gate sits at its initial value.
    rng = np.random.default_rng(seed)
    model.set_weights([weight + rng.normal(0, 0.3, weight.shape).astype(np.float32) for weight in model.get_weights()])
    inference = LSTMInference(model, config, **options)
    fast = tf.function(inference.__call__)
    return model, fast


CONFIGS = [
    dict(arch="bilstm", pooling="max"),  # The default.
    dict(arch="lstm", pooling="max"),
    dict(arch="bilstm", pooling="mean"),
    dict(arch="bilstm", pooling="attention"),
    dict(arch="lstm", pooling="max_mean"),
    dict(arch="bilstm", pooling="last"),
    dict(arch="lstm", pooling="last", num_layers=2),
    dict(arch="bilstm", pooling="max", num_layers=2),  # Residual around layer 2, then max pooling.
    dict(arch="bilstm", pooling="attention", num_layers=2, residual=False),
]


@pytest.mark.parametrize("changes", CONFIGS, ids=lambda changes: "-".join(str(value) for value in changes.values()))
@pytest.mark.parametrize("path", ["small", "large"])
def test_fast_forward_pass_equals_keras(changes, path):
    config = TrainConfig(units=6, embedding_dim=5, dropout_rate=0.0, spatial_dropout_rate=0.0, **changes)
    # Small batches use the fused op, large ones the sorted loop; the table only where it fits.
    options = {"small_batch": 10**6 if path == "small" else 0, "table_limit_bytes": 10**9 if path == "small" else 0}
    model, fast = keras_and_fast(config, seed=len(changes) + len(str(changes)), **options)
    ids, lengths = random_batch(23, 9, seed=1)
    expected = model.predict(ids, verbose=0)
    np.testing.assert_allclose(fast(ids, lengths).numpy(), expected, atol=1e-6, rtol=0)
    # The model sees pre-padded ids when trained that way; the fast pass always gets them left-aligned.
    np.testing.assert_allclose(model.predict(left_aligned_to_pre_padding(ids, lengths), verbose=0), expected,
                               atol=1e-6, rtol=0)


def test_paths_agree_on_one_row_and_on_equal_lengths():
    config = TrainConfig(units=6, embedding_dim=5, dropout_rate=0.0, spatial_dropout_rate=0.0)
    model, small = keras_and_fast(config, seed=3, small_batch=10**6)
    # Both paths, with and without the projection table.
    paths = [small] + [keras_and_fast(config, seed=3, **options)[1] for options in (
        {"small_batch": 0}, {"small_batch": 10**6, "table_limit_bytes": 0}, {"small_batch": 0, "table_limit_bytes": 0})]
    for ids, lengths in [random_batch(1, 5, seed=2), (np.ones((4, 3), np.int32), np.full(4, 3, np.int32))]:
        expected = model.predict(ids, verbose=0)
        for path in paths:
            np.testing.assert_allclose(path(ids, lengths).numpy(), expected, atol=1e-6, rtol=0)


def test_cell_state_beyond_the_fused_ops_default_clip():
    # BlockLSTM's first version clipped the cell state at 3 by default; Keras never clips.
    config = TrainConfig(arch="lstm", pooling="last", units=4, embedding_dim=3, dropout_rate=0.0,
                         spatial_dropout_rate=0.0)
    model = build_model(config, VOCABULARY, 2, use_cudnn=False)
    layer = model.get_layer("lstm_1")
    kernel, recurrent, bias = layer.get_weights()
    bias[:] = 5.0  # Input, forget, output gates ~1; candidate ~1: c grows by ~1 per step.
    layer.set_weights([kernel * 0, recurrent * 0, bias])
    ids, lengths = np.ones((2, 12), np.int32), np.full(2, 12, np.int32)
    expected = model.predict(ids, verbose=0)
    for small_batch in (10**6, 0):
        inference = LSTMInference(model, config, small_batch=small_batch)
        np.testing.assert_allclose(tf.function(inference.__call__)(ids, lengths).numpy(), expected, atol=1e-6, rtol=0)


def test_only_lstm_architectures_are_supported():
    assert supports(TrainConfig(arch="bilstm")) and supports(TrainConfig(arch="lstm"))
    assert not supports(TrainConfig(arch="gru")) and not supports(TrainConfig(arch="bigru"))
    with pytest.raises(ValueError, match=r"needs an LSTM architecture. Received: arch='gru'"):
        LSTMInference(build_model(TrainConfig(arch="gru"), VOCABULARY, 2), TrainConfig(arch="gru"))
