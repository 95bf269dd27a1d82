"""Adam that updates only the embedding rows a batch uses (``optimizer="lazy_adam"``, the default).

Why: Keras 3's Adam turns the embedding's sparse gradient (one row per token
of the batch) into a dense ``[vocabulary, embedding_dim]`` tensor and then
runs about a dozen element-wise passes over the whole table and its two
moment tables every step.  With the default 20,000 words × 128 that is three
10 MB tables per step, more work than the LSTM itself at batch 64 on a CPU
(docs/PERFORMANCE.md measures it).  :class:`LazyAdam` keeps Adam's formula
but applies it to the rows present in the batch only, the semantics of
TensorFlow Addons' ``LazyAdam``: a word absent from a batch keeps its vector
and its moments until it appears again, instead of drifting on stale
momentum.  Dense gradients (every other weight) follow Keras's Adam exactly.
"""

import keras
import tensorflow as tf


def _summed_rows(gradient: tf.IndexedSlices) -> tuple[tf.Tensor, tf.Tensor]:
    """``(rows, values)``: each distinct row once, its pieces summed (a word seen twice has two pieces)."""
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return rows, values


def _tf_variable(variable):
    # Keras variables wrap a tf.Variable; gathers and scatters need the wrapped one.
    return variable.value if isinstance(variable, keras.Variable) else variable


@keras.saving.register_keras_serializable(package="textclf")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (embedding) updates touch only the rows in the gradient.

    For a row ``r`` whose summed gradient in this step is ``g``, with ``t``
    the step number (1 for the first step)::

        m[r] += (g - m[r]) * (1 - beta_1)
        v[r] += (g * g - v[r]) * (1 - beta_2)
        w[r] -= learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m[r] / (sqrt(v[r]) + epsilon)

    which is Keras's Adam restricted to those rows; other rows, and their
    ``m`` and ``v``, are left as they are.  ``clipnorm`` clips a sparse
    gradient by the L2 norm of its summed rows (the norm of the dense
    gradient) and keeps it sparse.  Takes Keras Adam's arguments;
    ``amsgrad`` is not supported.

    Example:
        >>> optimizer = LazyAdam(learning_rate=1e-3, clipnorm=1.0)
        >>> LazyAdam.from_config(optimizer.get_config()).get_config() == optimizer.get_config()
        True
    """

    def __init__(self, *args, amsgrad=False, **kwargs):
        if amsgrad:
            raise ValueError("LazyAdam does not support `amsgrad`. Received: amsgrad=True")
        super().__init__(*args, amsgrad=False, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        rows, values = _summed_rows(gradient)
        dtype = variable.dtype
        values = tf.cast(values, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        alpha = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(tf.cast(self.beta_2, dtype), step))
                 / (1 - tf.pow(tf.cast(self.beta_1, dtype), step)))
        index = self._get_variable_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        momentum_rows = tf.gather(_tf_variable(momentum), rows)
        velocity_rows = tf.gather(_tf_variable(velocity), rows)
        momentum_rows += (values - momentum_rows) * (1 - self.beta_1)
        velocity_rows += (tf.square(values) - velocity_rows) * (1 - self.beta_2)
        self.assign(momentum, tf.IndexedSlices(momentum_rows, rows))
        self.assign(velocity, tf.IndexedSlices(velocity_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * momentum_rows / (tf.sqrt(velocity_rows) + self.epsilon),
                                                   rows))

    def _clip_by_norm(self, values, axes=None):
        if not isinstance(values, tf.IndexedSlices):
            return super()._clip_by_norm(values, axes)
        # Keras's version densifies the gradient (a full-table tensor per step), which is what this class avoids.
        rows, summed = _summed_rows(values)
        norm = tf.sqrt(tf.reduce_sum(tf.square(summed)))
        clipnorm = tf.cast(self.clipnorm, summed.dtype)
        return tf.IndexedSlices(summed * clipnorm / tf.maximum(norm, clipnorm), rows, values.dense_shape)
