"""Adam for textclf's training: Keras's formula in fewer passes, or restricted to the batch's embedding rows.

Why: Keras 3's Adam turns the embedding's sparse gradient (one row per token
of the batch) into a dense ``[vocabulary, embedding_dim]`` tensor and then
runs about a dozen element-wise TensorFlow ops over the whole table and its
two moment tables every step, each a full pass; with the default 20,000
words × 128 that is several 10 MB passes per step, a large share of a CPU
training step (docs/PERFORMANCE.md measures it).

- :class:`FusedAdam` (``optimizer="adam"``, the default): the same update,
  each variable in one pass of TensorFlow's fused ``ApplyAdam`` kernel.
- :class:`LazyAdam` (``optimizer="lazy_adam"``): Adam's formula applied to
  the rows present in the batch only, the semantics of TensorFlow Addons'
  ``LazyAdam``: a word absent from a batch keeps its vector and moments
  until it appears again.  Faster still, but it learns the embedding more
  slowly, and it measured lower validation macro-F1 here.
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
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam, each variable updated by TensorFlow's fused ``ApplyAdam`` kernel (one pass, not a dozen).

    The kernel computes Keras's formula, in the same order::

        alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1);  v += (g * g - v) * (1 - beta_2)
        w -= m * alpha / (sqrt(v) + epsilon)

    with the same slot variables, so checkpoints of either restore in the
    other; results agree to float32 rounding (the kernel computes
    ``1 - beta`` in float32, Keras in float64).  A sparse (embedding) gradient
    is summed per row and made dense first: Keras 3's Adam instead squares
    each piece of a repeated row apart (``v`` from ``1 + 1`` rather than
    ``(1 + 1)**2`` for a word seen twice), and clips by the norm of the
    pieces; here both use the true gradient.
    ``amsgrad`` uses Keras's own update.  Takes Keras Adam's arguments.

    Example:
        >>> optimizer = FusedAdam(learning_rate=1e-3, clipnorm=1.0)
        >>> FusedAdam.from_config(optimizer.get_config()).get_config() == optimizer.get_config()
        True
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_tf_variable(variable).handle, m=_tf_variable(self._momentums[index]).handle,
            v=_tf_variable(self._velocities[index]).handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(tf.convert_to_tensor(gradient), dtype))

    def _clip_by_norm(self, values, axes=None):
        if not isinstance(values, tf.IndexedSlices):
            return super()._clip_by_norm(values, axes)
        # Keras's version takes the norm of the unsummed pieces (a repeated word's pieces squared apart) and
        # densifies; this is the norm of the summed rows, and the result stays sparse for LazyAdam.
        rows, summed = _summed_rows(values)
        norm = tf.sqrt(tf.reduce_sum(tf.square(summed)))
        clipnorm = tf.cast(self.clipnorm, summed.dtype)
        return tf.IndexedSlices(summed * clipnorm / tf.maximum(norm, clipnorm), rows, values.dense_shape)


@keras.saving.register_keras_serializable(package="textclf")
class LazyAdam(FusedAdam):
    """Adam whose sparse (embedding) updates touch only the rows in the gradient.

    For a row ``r`` whose summed gradient in this step is ``g``, with ``t``
    the step number (1 for the first step)::

        m[r] += (g - m[r]) * (1 - beta_1)
        v[r] += (g * g - v[r]) * (1 - beta_2)
        w[r] -= learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m[r] / (sqrt(v[r]) + epsilon)

    which is Keras's Adam restricted to those rows; other rows, and their
    ``m`` and ``v``, are left as they are.  ``clipnorm`` clips a sparse
    gradient by the L2 norm of its summed rows and keeps it sparse.  Takes Keras Adam's arguments;
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
