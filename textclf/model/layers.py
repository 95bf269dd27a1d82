"""Mask-aware pooling layers over time steps, and an embedding that reads only the rows it looks up.

Keras's ``GlobalMaxPooling1D`` ignores the mask, so padding (zeros after a
masked LSTM) would take part in the maximum; these layers exclude masked
steps.  They are registered so ``model.keras`` files load without
``custom_objects`` once ``textclf`` is imported.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMaxPooling(keras.layers.Layer):
    """Maximum over the unmasked time steps: ``[batch, time, features]`` → ``[batch, features]``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            # A masked step never wins the maximum (every row has an unmasked step).
            inputs = ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), inputs, -1e9)
        return ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="textclf")
class AttentionPooling(keras.layers.Layer):
    """Weighted mean over unmasked time steps, with weights a learned scorer assigns.

    ``score_t = v · tanh(W h_t + b)``; ``weights = softmax(score)`` over the
    unmasked steps; output ``Σ_t weights_t h_t``.

    Args:
        units: Width of the scorer's hidden layer.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        self.projection = self.add_weight(name="projection", shape=(features, self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.context = self.add_weight(name="context", shape=(self.units, 1), initializer="glorot_uniform")

    def attention_weights(self, inputs, mask=None):
        """``[batch, time]`` weights (0 on masked steps, each row sums to 1)."""
        scores = ops.squeeze(ops.matmul(ops.tanh(ops.matmul(inputs, self.projection) + self.bias), self.context), -1)
        if mask is not None:
            scores = ops.where(ops.cast(mask, "bool"), scores, -1e9)
        return ops.softmax(scores, axis=-1)

    def call(self, inputs, mask=None):
        weights = self.attention_weights(inputs, mask)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="textclf")
class GatherEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` that gathers its rows straight from the variable.

    Keras's layer reads the whole table and then takes rows from the copy.
    Once an optimizer has updated a variable row by row (``LazyAdam``'s
    scatters), TensorFlow copies the whole variable on every such full read
    (its copy-on-read mode), 10 MB per step for 20,000 words × 128; a gather
    from the variable itself reads only the looked-up rows.  Same weights,
    same outputs, same sparse gradient.  Quantized or LoRA-enabled layers
    keep Keras's path.
    """

    def call(self, inputs):
        if self.quantization_mode or self.lora_enabled:
            return super().call(inputs)
        import tensorflow as tf

        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        # ``.value`` is the tf.Variable itself (a sparse read), or under mixed precision its cast copy.
        return ops.cast(tf.gather(self.embeddings.value, inputs), dtype=self.compute_dtype)
