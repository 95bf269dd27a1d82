"""Mask-aware pooling layers, an embedding that reads only the rows it looks up, and the wide TF-IDF branch on
the raw text.

Keras's ``GlobalMaxPooling1D`` ignores the mask, so padding (zeros after a masked LSTM) would take part in the
maximum.  The layers are registered so ``model.keras`` files load without ``custom_objects`` once ``textclf`` is
imported.
"""

from __future__ import annotations

import keras
from keras import ops
from textclf.errors import TextclfError


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


# Counting (row, n-gram) entries in a [rows x n-grams] buffer beats tf.unique where the batch's n-grams fill at least
# 1/BUFFER_FILL of it (long texts; docs/PERFORMANCE.md, "Serving"), and then costs at most 4 x BUFFER_FILL bytes per
# n-gram (and a bool mask of a quarter of that), about what tf.unique's hash table does; short texts keep
# tf.unique.  BUFFER_MAX_CELLS: 512 MB at most.
BUFFER_FILL, BUFFER_MAX_CELLS = 8, 1 << 27
# Below this many n-grams of a batch's distinct words, (row, n-gram) counts expand the pairs; from it, a sparse
# product (_counts_through_words): its ops cost about 0.1 ms more on one sentence (docs/PERFORMANCE.md,
# "Serving A/B").
PRODUCT_MIN_NGRAMS = 2048


def _entry_counts(index, weight, cells):
    """``(entries, counts)``: the distinct values of int64 ``index`` (``row * size + n-gram``, below ``cells``)
    and the sum of ``weight`` over each."""
    import tensorflow as tf

    def in_buffer():
        buffer = tf.math.unsorted_segment_sum(weight, index, cells)
        entries = tf.where(buffer > 0)[:, 0]  # Every weight is a count >= 1, so a filled cell is positive.
        return entries, tf.gather(buffer, entries)

    def by_unique():
        entries, position = tf.unique(index)
        return entries, tf.math.unsorted_segment_sum(weight, position, tf.size(entries, out_type=tf.int64))

    dense = (cells <= BUFFER_MAX_CELLS) & (cells <= BUFFER_FILL * tf.size(index, out_type=tf.int64))
    return tf.cond(dense, in_buffer, by_unique)


def _counts_of_pairs(bag, unit, feature, rows, size):
    """:func:`_counts_through_words` by expanding each (row, word) pair into its word's n-grams and counting the
    entries: fewer ops, so faster on a few short texts."""
    import tensorflow as tf

    per_unit = tf.RaggedTensor.from_value_rowids(feature, unit, nrows=bag.units, validate=False)
    expanded = tf.gather(per_unit, bag.pair_units)
    pair, feature = expanded.value_rowids(), expanded.flat_values
    row, weight = tf.gather(bag.pair_rows, pair), tf.gather(bag.pair_counts, pair)
    entry, counts = _entry_counts(row * size + feature, weight, rows * size)
    return entry // size, entry % size, counts


def _counts_through_words(bag, unit, feature, rows, size):
    """``(row, n-gram, count)`` of every (row, n-gram) entry, rows in order: the sparse product of the ``[rows,
    words]`` pair counts and the ``[words, n-grams]`` counts (``unit``, ``feature``: one entry per n-gram found).

    A CSR product sums each row's entries in one accumulator, where expanding every (row, word) pair's n-grams and
    counting the entries passed over all of them several times (news_source, batch 1,024: 0.55 of the time;
    docs/PERFORMANCE.md, "Serving A/B").  The CSR conversion needs entries grouped by row: ``key_units`` is sorted, and
    a row's pairs follow its words in order.
    """
    import tensorflow as tf

    def csr(matrix_rows, columns, values, shape):
        return tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=tf.stack([matrix_rows, columns], axis=1),
                                                        values=values, dense_shape=shape)

    words = csr(unit, feature, tf.ones_like(unit, tf.float32), tf.stack([bag.units, size]))
    pairs = csr(bag.pair_rows, bag.pair_units, bag.pair_counts, tf.stack([rows, bag.units]))
    product = tf.raw_ops.SparseMatrixSparseMatMul(a=pairs, b=words, type=tf.float32)
    indices, counts, _ = tf.raw_ops.CSRSparseMatrixToSparseTensor(sparse_matrix=product, type=tf.float32)
    return indices[:, 0], indices[:, 1], counts


@keras.saving.register_keras_serializable(package="textclf")
class NgramTfidfLogits(keras.layers.Layer):
    """Logits of a linear model on TF-IDF of the raw text's n-grams: the "wide" branch (``TrainConfig.wide``).

    ``analyzers``: ``[(kind, low, high), ...]`` (:mod:`textclf.text.ngrams`), ``sizes``: the fitted n-grams of
    each.  Per analyzer, a value is ``(1 + log(count)) * idf`` of each n-gram whose hashed key is in ``keys``,
    L2-normalised per row (``TfidfVectorizer(sublinear_tf=True)``; several analyzers are joined as scikit-learn's
    ``FeatureUnion`` joins them, each normalised on its own).  Core TF ops only, so TF Serving runs it; weights
    are fitted (``textclf.training.wide``).  Input: ``[batch]`` strings.  Output: float32 logits ``[batch, outputs]``.
    """

    def __init__(self, analyzers, sizes, outputs: int, **kwargs):
        from textclf.text.ngrams import check_analyzer

        kwargs.update(trainable=False, dtype="float32")  # Fitted weights, never trained; float32 under any policy.
        super().__init__(**kwargs)
        self.analyzers = [check_analyzer(tuple(analyzer)) for analyzer in analyzers]
        self.sizes, self.outputs = [int(size) for size in sizes], int(outputs)
        if len(self.sizes) != len(self.analyzers):
            raise TextclfError(f"`sizes` needs one size per analyzer. Received: sizes={sizes!r}, "
                             f"analyzers={analyzers!r}")
        self.parts = []
        for number, size in enumerate(self.sizes):
            self.parts.append((
                self.add_weight(shape=(size,), dtype="int64", initializer="zeros", trainable=False,
                                name=f"keys_{number}"),
                self.add_weight(shape=(size,), initializer="ones", trainable=False, name=f"idf_{number}"),
                self.add_weight(shape=(size, outputs), initializer="zeros", trainable=False, name=f"kernel_{number}"),
            ))
        self.bias = self.add_weight(shape=(outputs,), initializer="zeros", trainable=False, name="bias")

    def call(self, text):
        import tensorflow as tf

        # On the CPU wherever the model runs: its string ops have no GPU kernels, and on a GPU the sparse products
        # would need each row's columns sorted and distinct (cuSPARSE) and refuse deterministic ops
        # (`seed_everything` turns those on), where the CPU's kernels sum repeated entries.
        with tf.device("/CPU:0"):
            return self._logits(text)

    def _logits(self, text):
        import tensorflow as tf

        from textclf.text.ngrams import ngrams_of

        text = tf.reshape(text, [-1])
        rows = tf.shape(text, out_type=tf.int64)[0]
        logits = tf.zeros(tf.stack([rows, self.outputs]), tf.float32) + self.bias
        for analyzer, size, (keys, idf, kernel) in zip(self.analyzers, self.sizes, self.parts):
            if size == 0:
                continue
            bag = ngrams_of(text, analyzer)
            table = tf.convert_to_tensor(keys)
            position = tf.minimum(tf.searchsorted(table, bag.keys, out_type=tf.int64), size - 1)
            found = tf.gather(table, position) == bag.keys
            unit, feature = tf.boolean_mask(bag.key_units, found), tf.boolean_mask(position, found)
            # One entry per (row, n-gram) with its count, then the sublinear TF-IDF value and the row's L2 norm.
            if bag.pair_units is None:  # Units are rows.
                entry, counts = _entry_counts(unit * size + feature, tf.ones_like(unit, tf.float32), rows * size)
                row, feature = entry // size, entry % size
            else:  # Units are distinct words: each row's n-grams are its words', counted.
                row, feature, counts = tf.cond(
                    tf.size(unit) < PRODUCT_MIN_NGRAMS, lambda: _counts_of_pairs(bag, unit, feature, rows, size),
                    lambda: _counts_through_words(bag, unit, feature, rows, size))
            values = (1.0 + tf.math.log(counts)) * tf.gather(tf.convert_to_tensor(idf), feature)
            norms = tf.sqrt(tf.math.unsorted_segment_sum(values * values, row, rows))
            values = values / tf.gather(tf.maximum(norms, 1e-12), row)
            # A sparse [rows, n-grams] x dense kernel product: no [entries, outputs] copy of the kernel's rows.
            tfidf = tf.SparseTensor(tf.stack([row, feature], axis=1), values, tf.stack([rows, size]))
            logits += tf.sparse.sparse_dense_matmul(tfidf, tf.convert_to_tensor(kernel))
        return logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {**super().get_config(), "analyzers": [list(analyzer) for analyzer in self.analyzers],
                "sizes": self.sizes, "outputs": self.outputs}


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
