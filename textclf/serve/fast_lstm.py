"""The LSTM models' forward pass for the export: the Keras model's numbers with less work (docs/PERFORMANCE.md).

- The first layer's input projection ``embedding @ kernel + bias`` is precomputed per vocabulary entry (up to
  ``TABLE_LIMIT_BYTES``): a token costs a gather, not a matrix product.
- Up to ``SMALL_BATCH`` rows: one fused ``BlockLSTMV2`` per direction and layer, fed the projected inputs.
- Larger batches: rows sorted by length, and a loop whose step ``t`` computes only the rows still running.
Both reproduce Keras's masking: padded steps carry the state and output zeros, a backward half starts at its row's
last token (``tests/test_serving.py`` compares with Keras).  GRU models keep the Keras graph.
"""

from __future__ import annotations

import numpy as np

from textclf.model.factory import recurrent_head
from textclf.errors import TextclfError

# Up to this many rows a batch takes the fused-op path; above, the sorted loop.
SMALL_BATCH = 4
# Largest first-layer projection table (all directions together); above it the
# projection is computed per token from the embedding.
TABLE_LIMIT_BYTES = 192 * 2**20


def supports(config) -> bool:
    """Whether ``LSTMInference`` handles this architecture (LSTM and BiLSTM; not GRU)."""
    return config.arch in ("lstm", "bilstm")


class LSTMInference:
    """``ids [batch, time]`` (right-padded, every row non-empty) → class scores, as the Keras model.

    Args:
        model: A float32 LSTM or BiLSTM model of ``build_model``, dropout off; ``config`` its ``TrainConfig``.
        small_batch: Largest batch computed with the fused op.
        table_limit_bytes: Largest first-layer projection table (all directions together).
    """

    def __init__(self, model, config, small_batch: int = SMALL_BATCH, table_limit_bytes: int = TABLE_LIMIT_BYTES):
        import tensorflow as tf

        if not supports(config):
            raise TextclfError(f"LSTMInference needs an LSTM architecture. Received: arch={config.arch!r}")
        self.small_batch = int(small_batch)
        self.pooling = config.pooling
        layer_names = {layer.name for layer in model.layers}
        embedding = np.asarray(model.get_layer("embedding").embeddings, dtype=np.float32)
        self.layers = []  # Per layer: (directions, residual); a direction is a dict of weights.
        for number in range(1, config.num_layers + 1):
            layer = model.get_layer(f"{config.arch}_{number}")
            recurrent = [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
            directions = []
            for rnn in recurrent:
                cell = rnn.cell
                activations = (cell.activation.__name__, cell.recurrent_activation.__name__)
                if activations != ("tanh", "sigmoid") or not cell.use_bias:
                    raise TextclfError("LSTMInference needs tanh/sigmoid activations and a bias")
                kernel = np.asarray(cell.kernel, dtype=np.float32)
                bias = np.asarray(cell.bias, dtype=np.float32)
                recurrent_kernel = np.asarray(cell.recurrent_kernel, dtype=np.float32)
                units = recurrent_kernel.shape[0]
                # BlockLSTMV2 computes [x, h] @ w + b with Keras's gate order (i, f, c, o);
                # x is the projected input, so w stacks an identity on the recurrent kernel.
                weights = {"recurrent": recurrent_kernel,
                           "block": np.concatenate([np.eye(4 * units, dtype=np.float32), recurrent_kernel])}
                if number == 1 and len(recurrent) * embedding.shape[0] * 4 * units * 4 <= table_limit_bytes:
                    weights["table"] = embedding @ kernel + bias
                else:
                    if number == 1:
                        weights["embedding"] = embedding
                    weights.update(kernel=kernel, bias=bias)
                directions.append({"units": units, **{name: tf.Variable(value, trainable=False)
                                                      for name, value in weights.items()}})
            # The model adds a residual around layers 2+ when the widths match (see build_model).
            self.layers.append((directions, f"residual_{number}" in layer_names))
        # Keras layers after the recurrent stack: mask-aware pooling, then the Dense head.
        names = {"max": ["max_pooling"], "mean": ["mean_pooling"], "attention": ["attention_pooling"],
                 "max_mean": ["max_pooling", "mean_pooling"], "last": []}[config.pooling]
        self.pooling_layers = [model.get_layer(name) for name in names]
        self.head = recurrent_head(model)
        # A function call the graph does not inline: the untaken branch of the cond is then one
        # node, not the loop's hundred (stepping through those cost about 5% of a single sentence).
        self._large_function = tf.function(self._large, autograph=False, experimental_attributes={"_noinline": True})

    @staticmethod
    def _project(weights, inputs):
        """Input projection ``x @ kernel + bias`` of ids (first layer) or features, any leading shape."""
        import tensorflow as tf

        if "table" in weights:
            return tf.gather(weights["table"], inputs)
        if "embedding" in weights:
            inputs = tf.gather(weights["embedding"], inputs)
        flat = tf.reshape(inputs, [-1, tf.shape(inputs)[-1]])
        projected = tf.matmul(flat, weights["kernel"]) + weights["bias"]
        return tf.reshape(projected, tf.concat([tf.shape(inputs)[:-1], [tf.shape(projected)[-1]]], 0))

    def _head(self, outputs, lengths, steps):
        """Pooling and Dense head on the last layer's time-major ``outputs [time, batch, features]``."""
        import tensorflow as tf

        if self.pooling == "last":
            # The final state: a forward half ends at its row's last token, a backward half at its first.
            directions = self.layers[-1][0]
            units = directions[0]["units"]
            pooled = tf.gather(tf.transpose(outputs[..., :units], [1, 0, 2]), lengths - 1, batch_dims=1)
            if len(directions) == 2:
                pooled = tf.concat([pooled, outputs[0, :, units:]], -1)
        else:
            hidden = tf.transpose(outputs, [1, 0, 2])
            mask = tf.sequence_mask(lengths, steps)
            pooled = tf.concat([layer(hidden, mask=mask) for layer in self.pooling_layers], -1)
        return self.head(pooled)

    def _max_pooled(self, number, residual):
        """Whether layer ``number`` feeds max pooling directly (the paths then pool without rebuilding its outputs)."""
        return number == len(self.layers) and self.pooling == "max" and not residual

    def __call__(self, ids, lengths):
        """Scores ``[batch, outputs]`` for right-padded ``ids [batch, time]`` and their ``lengths`` (≥ 1)."""
        import tensorflow as tf

        return tf.cond(
            tf.shape(ids)[0] <= self.small_batch,
            lambda: self._small(ids, lengths),
            lambda: self._large_function(ids, lengths),
        )

    def _small(self, ids, lengths):
        """One fused ``BlockLSTMV2`` per direction, all rows up to the longest."""
        import tensorflow as tf

        steps = tf.shape(ids)[1]
        batch = tf.shape(ids)[0]
        valid = tf.transpose(tf.sequence_mask(lengths, steps))[:, :, tf.newaxis]
        inputs = tf.transpose(ids)
        for number, (directions, residual) in enumerate(self.layers, 1):
            outputs = []
            for index, weights in enumerate(directions):
                # The backward half reads each row reversed within its length: it starts at its last token.
                source = tf.reverse_sequence(inputs, lengths, seq_axis=0, batch_axis=1) if index == 1 else inputs
                units = weights["units"]
                zeros = tf.zeros(tf.stack([batch, units]))
                peephole = tf.zeros([units])
                outputs.append(tf.raw_ops.BlockLSTMV2(
                    seq_len_max=tf.cast(steps, tf.int64), x=self._project(weights, source), cs_prev=zeros,
                    h_prev=zeros, w=weights["block"], wci=peephole, wcf=peephole, wco=peephole,
                    b=tf.zeros([4 * units]), cell_clip=0.0, use_peephole=False,
                )[6])
            if self._max_pooled(number, residual):
                # A maximum over a row's steps ignores their order: no need to un-reverse.
                pooled = [tf.reduce_max(tf.where(valid, output, -1e9), axis=0) for output in outputs]
                return self.head(tf.concat(pooled, -1))
            if len(outputs) == 2:
                outputs[1] = tf.reverse_sequence(outputs[1], lengths, seq_axis=0, batch_axis=1)
            # Steps past a row's end computed on padding: zero, as Keras outputs them.
            output = tf.where(valid, tf.concat(outputs, -1), 0.0)
            inputs = inputs + output if residual else output
        return self._head(inputs, lengths, steps)

    def _large(self, ids, lengths):
        """Rows sorted by length; step ``t`` computes only the rows longer than ``t``."""
        import tensorflow as tf

        order = tf.argsort(lengths, direction="DESCENDING", stable=True)
        lengths = tf.gather(lengths, order)
        steps = tf.shape(ids)[1]
        valid = tf.transpose(tf.sequence_mask(lengths, steps))  # [time, batch]: each step a prefix of rows.
        active = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)  # Rows still running at each step.
        starts = tf.cumsum(active, exclusive=True)
        inputs = tf.transpose(tf.gather(ids, order))
        for number, (directions, residual) in enumerate(self.layers, 1):
            # Each direction's inputs as one [tokens, ...] array, step after step (rows of a step in order).
            projected = []
            for index, weights in enumerate(directions):
                source = tf.reverse_sequence(inputs, lengths, seq_axis=0, batch_axis=1) if index == 1 else inputs
                projected.append(self._project(weights, tf.boolean_mask(source, valid)))
            outputs = self._shrinking_loop(projected, directions, active, starts)
            if self._max_pooled(number, residual):
                # Masked max pooling straight from the tokens' outputs (a maximum is exact in any order).
                rows = tf.cast(tf.where(valid)[:, 1], tf.int32)
                pooled = [tf.math.unsorted_segment_max(output, rows, active[0]) for output in outputs]
                scores = self.head(tf.concat(pooled, -1))
                return tf.gather(scores, tf.math.invert_permutation(order))
            # Back to [time, batch, units], zero past each row's end.
            sequences = [tf.RaggedTensor.from_row_starts(output, starts).to_tensor() for output in outputs]
            if len(sequences) == 2:
                sequences[1] = tf.reverse_sequence(sequences[1], lengths, seq_axis=0, batch_axis=1)
            output = tf.concat(sequences, -1)
            inputs = inputs + output if residual else output
        scores = self._head(inputs, lengths, steps)
        return tf.gather(scores, tf.math.invert_permutation(order))

    @staticmethod
    def _shrinking_loop(projected, directions, active, starts):
        """LSTM steps over ``[tokens, 4 * units]`` projected inputs; returns ``[tokens, units]`` outputs."""
        import tensorflow as tf

        batch = active[0]
        steps = tf.size(active)
        state = []
        for weights in directions:
            zeros = tf.zeros(tf.stack([batch, weights["units"]]))
            state += [zeros, zeros, tf.TensorArray(tf.float32, size=steps, infer_shape=False,
                                                   element_shape=[None, weights["units"]])]

        def body(step, *state):
            rows, start = active[step], starts[step]
            new = []
            for index, (inputs, weights) in enumerate(zip(projected, directions)):
                h, c, written = state[3 * index: 3 * index + 3]
                # Keras's LSTM cell (implementation 2): z = x W + h U + b, gates i, f, c, o.
                z = inputs[start:start + rows] + tf.matmul(h[:rows], weights["recurrent"])
                i, f, g, o = tf.split(z, 4, axis=1)
                c = tf.sigmoid(f) * c[:rows] + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                new += [h, c, written.write(step, h)]
            return (step + 1, *new)

        invariants = [tf.TensorShape([])]
        for weights in directions:
            invariants += [tf.TensorShape([None, weights["units"]])] * 2 + [tf.TensorShape(None)]
        final = tf.while_loop(lambda step, *_: step < steps, body, [tf.constant(0), *state],
                              shape_invariants=invariants)
        return [final[1 + 3 * index + 2].concat() for index in range(len(directions))]
