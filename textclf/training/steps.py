"""The training loop's compiled steps: per-replica work summed over replicas, several training steps per call.

Several steps per call (Keras's ``steps_per_execution``) save Python's 1-2 ms per step between calls; every step
still updates the loop's counters and sums on its own, in order, so a checkpoint between calls is the one a
step-by-step loop would take (a resumed run stays bitwise equal).
"""

from __future__ import annotations

from textclf.training.setup import loss_name

# Training steps per call of the compiled function; the progress bar moves once per call.
STEPS_PER_CALL = 16


def batches(distributed_dataset):
    """Per-step batches until every worker has run out.

    Workers with no data left get empty batches, so all run the same number of steps (bucketed shards differ).
    """
    iterator = iter(distributed_dataset)
    while True:
        optional = iterator.get_next_as_optional()
        if not bool(optional.has_value()):
            return
        yield optional.get_value()


def step_functions(strategy, model, optimizer, classes, weights_by_class, state, multi_label=False):
    """``(train_steps, make_evaluate_step)`` for the loop.

    ``train_steps(iterator, limit)`` runs up to ``limit`` steps (fewer when the data runs out), adding each step's
    ``[loss, correct, rows]`` to ``state.sums`` and counting it in ``state.step`` and ``state.global_step``.
    ``make_evaluate_step(element_spec)`` compiles ``step(batch)``: a validation batch's ``[loss, correct, rows]``
    summed over replicas.  ``correct`` is Keras's "accuracy": argmax for a softmax; for sigmoid units the share of
    units on the right side of 0.5, per row (``binary_accuracy``).  ``weights_by_class``: loss weight per class
    index, or ``None``; ``state``: the loop's :class:`textclf.training.loop.LoopState`.
    """
    sums = _batch_sums_function(model, classes, weights_by_class, multi_label)
    train_on = _train_on_function(strategy, model, optimizer, sums, state)
    train_steps = _steps_in_graph(train_on) if strategy.num_replicas_in_sync == 1 else _steps_from_python(train_on)
    return train_steps, _evaluate_step_maker(strategy, sums)


def _batch_sums_function(model, classes, weights_by_class, multi_label):
    """``sums(ids, targets, training)``: a batch's ``(loss sum, correct, rows)`` on one replica."""
    import keras
    import tensorflow as tf

    loss_function = keras.losses.get(loss_name(classes, multi_label))
    sigmoid = len(classes) == 2 or multi_label
    class_weight_vector = None if weights_by_class is None else tf.constant(
        [weights_by_class[index] for index in range(len(classes))], tf.float32)

    def sums(ids, targets, training):
        # An empty batch (a worker that ran out) may have zero columns; one padding column keeps shapes valid.
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
        outputs = model(ids, training=training)
        losses = loss_function(targets, outputs)  # [rows]: binary cross-entropy is averaged over the units.
        if training and class_weight_vector is not None:
            # Class weights exist for binary and multiclass only (the config refuses them for multi-label).
            class_index = tf.cast(targets[:, 0] if sigmoid else targets, tf.int32)
            losses = losses * tf.gather(class_weight_vector, class_index)
        if sigmoid:
            right = tf.cast(outputs > 0.5, tf.float32) == tf.cast(targets > 0.5, tf.float32)
            correct = tf.reduce_sum(tf.reduce_mean(tf.cast(right, tf.float32), axis=-1))
        else:
            right = tf.argmax(outputs, -1, tf.int32) == tf.cast(targets, tf.int32)
            correct = tf.reduce_sum(tf.cast(right, tf.float32))
        return tf.reduce_sum(losses), correct, tf.cast(tf.shape(targets)[0], tf.float32)

    return sums


def _train_on_function(strategy, model, optimizer, sums, state):
    """``train_on(batch)``: one training step on every replica; its summed sums and count go to ``state``."""
    import tensorflow as tf

    def replica_train(ids, targets):
        with tf.GradientTape() as tape:
            loss_sum, correct, rows = sums(ids, targets, training=True)
            # The mean over the global batch: Keras sums the replicas' gradients.
            all_rows = tf.distribute.get_replica_context().all_reduce("sum", rows)
            objective = loss_sum / tf.maximum(all_rows, 1.0)
        optimizer.apply(tape.gradient(objective, model.trainable_variables), model.trainable_variables)
        return tf.stack([loss_sum, correct, rows])

    def train_on(batch):
        step_sums = strategy.reduce("sum", strategy.run(replica_train, args=batch), axis=None)
        state.sums.assign_add(tf.cast(step_sums, tf.float64))
        state.step.assign_add(1)
        state.global_step.assign_add(1)

    return train_on


def _steps_in_graph(train_on):
    """``train_steps`` for one replica: up to ``limit`` steps in one compiled graph loop."""
    import tensorflow as tf

    def steps_in_graph_loop(iterator, limit):
        # One trace serves every batch shape (bucketed batches vary in length).  The loop is written with
        # tf.while_loop/tf.cond rather than converted by autograph: converting this function and everything it
        # calls (Keras's layers and optimizer, written for backends without autograph) cost about a second of
        # the first epoch.
        def step(taken, _):
            optional = iterator.get_next_as_optional()

            def train():
                train_on(optional.get_value())
                return tf.constant(True)

            return taken + 1, tf.cond(optional.has_value(), train, lambda: tf.constant(False))

        tf.while_loop(lambda taken, running: tf.logical_and(running, taken < limit), step,
                      [tf.constant(0, limit.dtype), tf.constant(True)])

    return tf.function(steps_in_graph_loop, autograph=False)


def _steps_from_python(train_on):
    """``train_steps`` for several replicas: a Python loop calling one compiled step per batch."""
    import tensorflow as tf

    compiled_step = []

    def steps_from_python(iterator, limit):
        # Several replicas: the all-reduce of a sparse (embedding) gradient inside a graph loop fails across
        # workers (TF 2.21: "Shape mismatch in the collective instance"), so one compiled step per batch.
        if not compiled_step:
            compiled_step.append(tf.function(train_on, input_signature=[iterator.element_spec], autograph=False))
        for _ in range(int(limit)):
            optional = iterator.get_next_as_optional()
            if not bool(optional.has_value()):
                return
            compiled_step[0](optional.get_value())

    return steps_from_python


def _evaluate_step_maker(strategy, sums):
    """``make_evaluate_step(element_spec)``: compiles a validation batch's ``[loss, correct, rows]`` over replicas."""
    import tensorflow as tf

    def replica_evaluate(ids, targets):
        return tf.stack(sums(ids, targets, training=False))

    def make_evaluate_step(element_spec):
        def step(batch):
            return strategy.reduce("sum", strategy.run(replica_evaluate, args=batch), axis=None)

        return tf.function(step, input_signature=[element_spec], autograph=False)

    return make_evaluate_step
