"""Adam for textclf's training: Keras's formula in fewer passes, or restricted to the batch's embedding rows.

Keras 3's Adam densifies the embedding's sparse gradient and runs about a dozen full passes over the table and
its two moment tables every step (docs/PERFORMANCE.md).  :class:`FusedAdam` (``optimizer="adam"``) does the same
update in one pass of TensorFlow's ``ApplyAdam`` kernel; :class:`LazyAdam` (``optimizer="lazy_adam"``) updates
only the rows present in the batch (TF Addons' ``LazyAdam`` semantics: faster, but learns the embedding slower).
"""

import keras
import tensorflow as tf
from textclf.errors import TextclfError


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

    Same formula and slot variables, so checkpoints restore either way; results agree to float32 rounding.  A
    sparse gradient is summed per row first: Keras squares each piece of a repeated row apart (``v`` from
    ``1 + 1``, not ``(1 + 1)**2``, for a word seen twice) and clips by the pieces' norm; here both use the true
    gradient.  ``amsgrad`` uses Keras's own update.
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
    """Adam whose sparse (embedding) updates touch only the rows in the gradient, with their summed gradient.

    Keras's Adam restricted to those rows; other rows and their ``m`` and ``v`` stay as they are until the word
    appears again.  ``clipnorm`` clips by the norm of the summed rows and keeps the gradient sparse.
    """

    def __init__(self, *args, amsgrad=False, **kwargs):
        if amsgrad:
            raise TextclfError("LazyAdam does not support `amsgrad`. Received: amsgrad=True")
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
