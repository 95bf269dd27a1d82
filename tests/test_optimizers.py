"""FusedAdam (the default), LazyAdam and GatherEmbedding, on tiny literal tables."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textclf import TrainConfig
from textclf.training.setup import make_optimizer
from textclf.model.layers import GatherEmbedding
from textclf.model.optimizers import FusedAdam, LazyAdam

TABLE = np.array([[0.0, 0.1], [0.2, 0.3], [0.4, 0.5], [0.6, 0.7]], dtype="float32")


def sparse(values, rows):
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows), tf.constant([4, 2]))


def slots(optimizer, variable):
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index].numpy(), optimizer._velocities[index].numpy()


def test_lazy_adam_updates_only_the_rows_in_the_gradient():
    table = keras.Variable(TABLE)
    optimizer = LazyAdam(learning_rate=0.1)
    optimizer.build([table])
    # Row 1 appears twice (its pieces sum to [1.5, 2.0]), row 3 once; then row 3 alone.
    optimizer.apply([sparse([[1.0, 2.0], [0.5, -1.0], [0.5, 0.0]], [1, 3, 1])], [table])
    np.testing.assert_allclose(table.numpy(), [[0.0, 0.1], [0.1, 0.2], [0.4, 0.5], [0.500001, 0.8]], atol=2e-6)
    optimizer.apply([sparse([[1.0, 1.0]], [3])], [table])
    # Row 1 keeps its value in step 2 (Keras's Adam would move it on its momentum); rows 0 and 2 never move.
    np.testing.assert_allclose(table.numpy(), [[0.0, 0.1], [0.1, 0.2], [0.4, 0.5], [0.403483, 0.794737]], atol=2e-6)
    momentum, velocity = slots(optimizer, table)
    np.testing.assert_allclose(momentum, [[0, 0], [0.15, 0.2], [0, 0], [0.145, 0.01]], atol=1e-7)
    np.testing.assert_allclose(velocity, [[0, 0], [0.00225, 0.004], [0, 0], [0.00124975, 0.001999]], atol=1e-7)


def test_lazy_adam_equals_keras_adam_on_rows_every_step_touches_and_on_dense_gradients():
    lazy_table, dense_table = keras.Variable(TABLE), keras.Variable(TABLE)
    lazy, dense = LazyAdam(learning_rate=0.1, clipnorm=1.0), keras.optimizers.Adam(learning_rate=0.1, clipnorm=1.0)
    lazy.build([lazy_table])
    dense.build([dense_table])
    gradients = [np.array([[1.0, -2.0], [0.5, 0.5], [0.0, 3.0], [-1.0, 0.25]], dtype="float32"),
                 np.array([[0.2, 0.1], [-0.3, 0.4], [2.0, 2.0], [0.0, -0.5]], dtype="float32")]
    for gradient in gradients:
        # Every row in every step: lazy and dense Adam do the same arithmetic.
        lazy.apply([sparse(gradient, [0, 1, 2, 3])], [lazy_table])
        dense.apply([tf.constant(gradient)], [dense_table])
        np.testing.assert_allclose(lazy_table.numpy(), dense_table.numpy(), rtol=1e-6, atol=1e-7)
    lazy_kernel, dense_kernel = keras.Variable(TABLE), keras.Variable(TABLE)
    lazy, dense = LazyAdam(learning_rate=0.1), keras.optimizers.Adam(learning_rate=0.1)
    lazy.build([lazy_kernel])
    dense.build([dense_kernel])
    for gradient in gradients:
        lazy.apply([tf.constant(gradient)], [lazy_kernel])
        dense.apply([tf.constant(gradient)], [dense_kernel])
    # Dense gradients take FusedAdam's kernel: Keras's formula to float32 rounding.
    np.testing.assert_allclose(lazy_kernel.numpy(), dense_kernel.numpy(), rtol=1e-5, atol=1e-6)


def test_lazy_adam_clips_a_sparse_gradient_by_the_norm_of_its_summed_rows():
    table = keras.Variable(TABLE)
    optimizer = LazyAdam(learning_rate=0.1, clipnorm=1.0)
    optimizer.build([table])
    # Row 2's pieces sum to [3, 4]: norm 5, clipped to [0.6, 0.8]; m after one step is 0.1 of that.
    optimizer.apply([sparse([[1.0, 1.0], [2.0, 3.0]], [2, 2])], [table])
    momentum, _ = slots(optimizer, table)
    np.testing.assert_allclose(momentum, [[0, 0], [0, 0], [0.06, 0.08], [0, 0]], atol=1e-7)


def test_optimizer_configs_round_trip_and_lazy_adam_refuses_amsgrad():
    for optimizer_class in (FusedAdam, LazyAdam):
        optimizer = optimizer_class(learning_rate=0.003, beta_1=0.8, clipnorm=2.0)
        assert optimizer_class.from_config(optimizer.get_config()).get_config() == optimizer.get_config()
    with pytest.raises(ValueError, match="LazyAdam does not support `amsgrad`. Received: amsgrad=True"):
        LazyAdam(amsgrad=True)


def test_fused_adam_is_keras_adam_on_the_summed_gradient():
    gradients = [np.array([[1.0, -2.0], [0.5, 0.5], [0.0, 3.0], [-1.0, 0.25]], dtype="float32"),
                 np.array([[0.2, 0.1], [-0.3, 0.4], [2.0, 2.0], [0.0, -0.5]], dtype="float32"),
                 np.array([[-0.7, 0.0], [0.0, 0.0], [0.1, -0.1], [4.0, 1.0]], dtype="float32")]
    for clipnorm, as_sparse in ((None, False), (1.0, False), (None, True), (1.0, True)):
        ours, theirs = keras.Variable(TABLE), keras.Variable(TABLE)
        fused = FusedAdam(learning_rate=0.1, clipnorm=clipnorm)
        reference = keras.optimizers.Adam(learning_rate=0.1, clipnorm=clipnorm)
        fused.build([ours])
        reference.build([theirs])
        for gradient in gradients:
            # A sparse gradient with a repeated row, as an embedding produces; Keras's Adam gets it summed.
            given = sparse(np.concatenate([gradient, gradient[:1]]), [0, 1, 2, 3, 0]) if as_sparse else gradient
            fused.apply([given], [ours])
            reference.apply([tf.convert_to_tensor(given)], [theirs])
            # Equal to float32 rounding: the kernel computes 1 - beta in float32, Keras in float64.
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=5e-6)
        for mine, keras_slot in zip(slots(fused, ours), slots(reference, theirs)):
            np.testing.assert_allclose(mine, keras_slot, rtol=5e-5, atol=1e-8)


def test_keras_adam_squares_the_pieces_of_a_repeated_row_which_fused_adam_does_not():
    # Why FusedAdam sums first: Keras 3's Adam squares each piece of a sparse
    # gradient, so a row seen twice gets v from 1 + 1 instead of (1 + 1)**2 and
    # its first step is sqrt(2) times the learning rate (docs/PERFORMANCE.md).
    twice = sparse([[1.0, 1.0], [1.0, 1.0]], [0, 0])
    keras_table, fused_table = keras.Variable(TABLE), keras.Variable(TABLE)
    keras_adam, fused = keras.optimizers.Adam(learning_rate=0.1), FusedAdam(learning_rate=0.1)
    keras_adam.build([keras_table])
    fused.build([fused_table])
    keras_adam.apply([twice], [keras_table])
    fused.apply([twice], [fused_table])
    np.testing.assert_allclose(keras_table.numpy()[0] - TABLE[0], [-0.141420, -0.141420], atol=1e-5)
    np.testing.assert_allclose(fused_table.numpy()[0] - TABLE[0], [-0.1, -0.1], atol=1e-5)


def test_optimizer_setting_picks_the_class_and_is_validated():
    assert type(make_optimizer(TrainConfig(), 10)) is FusedAdam
    assert type(make_optimizer(TrainConfig(optimizer="lazy_adam"), 10)) is LazyAdam
    with pytest.raises(ValueError, match="`optimizer` must be one of adam, lazy_adam. Received: optimizer='sgd'"):
        TrainConfig(optimizer="sgd")


def test_gather_embedding_equals_keras_embedding_and_keeps_a_sparse_gradient():
    ids = np.array([[1, 3, 0], [2, 2, 1]], dtype="int32")
    ours = GatherEmbedding(4, 2, mask_zero=True)
    theirs = keras.layers.Embedding(4, 2, mask_zero=True)
    ours.build()
    theirs.build()
    ours.set_weights([TABLE])
    theirs.set_weights([TABLE])
    np.testing.assert_array_equal(ours(ids).numpy(), TABLE[ids])
    np.testing.assert_array_equal(ours.compute_mask(ids).numpy(), theirs.compute_mask(ids).numpy())
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(ours(ids) * 2.0)
    gradient = tape.gradient(total, ours.trainable_variables)[0]
    assert isinstance(gradient, tf.IndexedSlices)
    np.testing.assert_array_equal(tf.convert_to_tensor(gradient).numpy(),
                                  [[2, 2], [4, 4], [4, 4], [2, 2]])
    rebuilt = GatherEmbedding.from_config(ours.get_config())
    assert rebuilt.get_config() == ours.get_config()


def test_a_keras_adam_checkpoint_restores_into_fused_adam(tmp_path):
    # Runs checkpointed before FusedAdam became the default resume with it: the same slot variables.
    table = keras.Variable(TABLE)
    keras_adam = keras.optimizers.Adam(learning_rate=0.1)
    keras_adam.build([table])
    keras_adam.apply([tf.constant(TABLE)], [table])
    path = tf.train.Checkpoint(optimizer=keras_adam).write(str(tmp_path / "adam"))
    restored_table = keras.Variable(np.zeros_like(TABLE))
    fused = FusedAdam(learning_rate=0.1)
    fused.build([restored_table])
    tf.train.Checkpoint(optimizer=fused).read(path).assert_existing_objects_matched()
    assert int(fused.iterations.numpy()) == 1
    for restored, saved in zip(slots(fused, restored_table), slots(keras_adam, table)):
        np.testing.assert_array_equal(restored, saved)
