"""Mask-aware pooling layers, an embedding that reads only the rows it looks up, and the wide TF-IDF branch.

Keras's ``GlobalMaxPooling1D`` ignores the mask, so padding (zeros after a masked LSTM) would take part in the
maximum.  The layers are registered so ``model.keras`` files load without ``custom_objects`` once ``textclf`` is
imported.
"""

from __future__ import annotations

import keras
from keras import ops


class _MaskedPooling(keras.layers.Layer):
    """``[batch, time, features]`` → ``[batch, features]`` over the unmasked steps; the mask ends here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMaxPooling(_MaskedPooling):
    """Maximum over the unmasked time steps."""

    def call(self, inputs, mask=None):
        if mask is not None:
            # A masked step never wins the maximum (every row has an unmasked step).
            inputs = ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), inputs, -1e9)
        return ops.max(inputs, axis=1)


@keras.saving.register_keras_serializable(package="textclf")
class AttentionPooling(_MaskedPooling):
    """Weighted mean ``Σ_t softmax(v · tanh(W h_t + b))_t h_t`` over the unmasked steps; ``units`` is W's width."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units

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

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="textclf")
class GatherEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` that gathers its rows straight from the variable (same outputs and gradient).

    Keras's layer reads the whole table; once ``LazyAdam`` has scattered into the variable, TensorFlow copies
    the whole variable on every such read (copy-on-read mode).  Quantized or LoRA layers keep Keras's path.
    """

    def call(self, inputs):
        if self.quantization_mode or self.lora_enabled:
            return super().call(inputs)
        import tensorflow as tf

        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        # ``.value`` is the tf.Variable itself (a sparse read), or under mixed precision its cast copy.
        return ops.cast(tf.gather(self.embeddings.value, inputs), dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="textclf")
class TfidfLogits(keras.layers.Layer):
    """Logits of a linear model on TF-IDF of the ids' 1- and 2-grams: the "wide" branch (``TrainConfig.wide``).

    Features: every id, then the 2-grams in ``bigram_keys`` (``first * vocabulary_size + second``, sorted); a
    value is ``(1 + log(count)) * idf``, L2-normalised per row (``TfidfVectorizer(sublinear_tf=True)``); padding
    counts for nothing.  Core TF ops only, so TF Serving runs it; weights are fitted (``textclf.training.wide``).
    Input: int32 ids ``[batch, time]``.  Output: float32 logits ``[batch, outputs]``.
    """

    def __init__(self, vocabulary_size: int, bigrams: int, outputs: int, **kwargs):
        kwargs.update(trainable=False, dtype="float32")  # Fitted weights, never trained; float32 under any policy.
        super().__init__(**kwargs)
        self.vocabulary_size, self.bigrams, self.outputs = vocabulary_size, bigrams, outputs
        features = vocabulary_size + bigrams
        self.bigram_keys = self.add_weight(shape=(bigrams,), dtype="int64", initializer="zeros", trainable=False,
                                           name="bigram_keys")
        self.idf = self.add_weight(shape=(features,), initializer="ones", trainable=False, name="idf")
        self.kernel = self.add_weight(shape=(features, outputs), initializer="zeros", trainable=False, name="kernel")
        self.bias = self.add_weight(shape=(outputs,), initializer="zeros", trainable=False, name="bias")

    def call(self, ids):
        import tensorflow as tf

        ids = tf.cast(ids, tf.int64)
        rows = tf.shape(ids, out_type=tf.int64)[0]
        vocabulary, features = self.vocabulary_size, self.vocabulary_size + self.bigrams
        row_of = tf.broadcast_to(tf.range(rows)[:, None], tf.shape(ids, out_type=tf.int64))
        present = ids > 0
        row_parts, feature_parts = [tf.boolean_mask(row_of, present)], [tf.boolean_mask(ids, present)]
        if self.bigrams:
            keys = ids[:, :-1] * vocabulary + ids[:, 1:]
            keys_table = tf.convert_to_tensor(self.bigram_keys)
            position = tf.searchsorted(keys_table, tf.reshape(keys, [-1]), out_type=tf.int64)
            position = tf.reshape(tf.minimum(position, self.bigrams - 1), tf.shape(keys))
            found = (tf.gather(keys_table, position) == keys) & present[:, :-1] & present[:, 1:]
            row_parts.append(tf.boolean_mask(row_of[:, :-1], found))
            feature_parts.append(tf.boolean_mask(position, found) + vocabulary)
        row, feature = tf.concat(row_parts, 0), tf.concat(feature_parts, 0)
        # One entry per (row, feature) with its count, then the sublinear TF-IDF value and the row's L2 norm.
        unique, index = tf.unique(row * features + feature)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(index, tf.float32), index, tf.size(unique))
        row, feature = unique // features, unique % features
        values = (1.0 + tf.math.log(counts)) * tf.gather(tf.convert_to_tensor(self.idf), feature)
        norms = tf.sqrt(tf.math.unsorted_segment_sum(values * values, row, rows))
        values = values / tf.gather(tf.maximum(norms, 1e-12), row)
        weighted = values[:, None] * tf.gather(tf.convert_to_tensor(self.kernel), feature)
        return tf.math.unsorted_segment_sum(weighted, row, rows) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "bigrams": self.bigrams,
                "outputs": self.outputs}


@keras.saving.register_keras_serializable(package="textclf")
class Blend(keras.layers.Layer):
    """``activation(a * logits(p) + b * wide + c)``: the recurrent head's probabilities ``p`` joined with wide logits.

    ``logits(p)`` is ``log(p / (1 - p))`` for one sigmoid unit and ``log(p)`` for a softmax (logits up to a
    per-row constant).  ``a = 1, b = 0, c = 0`` returns ``p``; weights are fitted on the validation rows.
    """

    def __init__(self, outputs: int, **kwargs):
        kwargs.update(trainable=False, dtype="float32")
        super().__init__(**kwargs)
        self.outputs = outputs
        self.scales = self.add_weight(shape=(2,), initializer=keras.initializers.Constant([1.0, 0.0]),
                                      trainable=False, name="scales")
        self.bias = self.add_weight(shape=(outputs,), initializer="zeros", trainable=False, name="bias")

    def call(self, inputs):
        probabilities, wide = inputs
        probabilities = ops.clip(ops.cast(probabilities, "float32"), 1e-7, 1.0 - 1e-7)
        if self.outputs == 1:
            logits = ops.log(probabilities) - ops.log1p(-probabilities)
            return ops.sigmoid(self.scales[0] * logits + self.scales[1] * wide + self.bias)
        return ops.softmax(self.scales[0] * ops.log(probabilities) + self.scales[1] * wide + self.bias, axis=-1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "outputs": self.outputs}
