"""Training input pipelines: tokenized once, kept flat, batched by length.

The classic recipe pads every text to one fixed length, so a 10-word review
costs as many LSTM steps as the longest allowed one.  Here the ids of all
texts are kept as one flat int32 array plus row lengths (no Python list per
text), and ``tf.data``'s ``bucket_by_sequence_length`` groups texts of
similar length, padding each batch only to its own longest row.  With
post-padding and masking, the model computes exactly what it would on the
fixed-length matrix (masked steps carry the state forward).
"""

from __future__ import annotations

from array import array

import numpy as np

from textclf.text.sequences import empty_index, encode, truncated

# Rows held by the per-epoch shuffle; the rows are fully permuted once before.
SHUFFLE_BUFFER = 16384


class EncodedTexts:
    """Truncated id sequences of many texts, stored flat.

    Attributes:
        values: int32 ids of every row, concatenated.
        lengths: int64 length of each row (every row has at least one id).
    """

    def __init__(self, values: np.ndarray, lengths: np.ndarray):
        self.values = values
        self.lengths = lengths

    def __len__(self):
        return len(self.lengths)

    @classmethod
    def from_texts(cls, tokenizer, texts, max_len: int, truncating: str = "post") -> "EncodedTexts":
        """Tokenizes ``texts`` with the rules of :func:`textclf.text.sequences.encode`, without padding."""
        fallback = [empty_index(tokenizer)]
        values, lengths = array("i"), array("q")
        for sequence in tokenizer.texts_to_sequences_generator(texts):
            sequence = sequence or fallback
            sequence = truncated(sequence, max_len, truncating)
            values.extend(sequence)
            lengths.append(len(sequence))
        return cls(np.frombuffer(values, dtype=np.int32), np.frombuffer(lengths, dtype=np.int64))

    def take(self, order) -> "EncodedTexts":
        """The rows at ``order``, in that order."""
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]) if len(self) else np.zeros(0, dtype=np.int64)
        lengths = self.lengths[order]
        positions = np.repeat(starts[order] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        positions += np.arange(lengths.sum())
        return EncodedTexts(self.values[positions], lengths)

    def padded(self, max_len: int) -> np.ndarray:
        """The post-padded ``[rows, max_len]`` matrix (what ``encode`` returns with padding="post")."""
        matrix = np.zeros((len(self), max_len), dtype=np.int32)
        columns = np.arange(max_len)
        matrix[columns[None, :] < self.lengths[:, None]] = self.values
        return matrix


def bucket_boundaries(lengths: np.ndarray, buckets: int = 10) -> list[int]:
    """Upper length bounds that split ``lengths`` into about ``buckets`` equally full groups."""
    quantiles = np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1]) if len(lengths) else []
    return sorted({int(np.ceil(q)) + 1 for q in quantiles if q >= 1})


def make_dataset(encoded: EncodedTexts, targets, batch_size: int, shuffle_seed=None, bucket: bool = True):
    """A ``tf.data.Dataset`` of ``(ids, targets)`` batches, post-padded per batch.

    Args:
        encoded: The tokenized texts.
        targets: One target row per text (NumPy).
        batch_size: Texts per batch.
        shuffle_seed: Shuffle every epoch with this seed; ``None`` keeps the order.
        bucket: Group texts of similar length (training); otherwise batches
            follow the input order, each padded to its longest row.
    """
    import tensorflow as tf

    if shuffle_seed is not None:
        # One full permutation up front, then a bounded shuffle buffer each
        # epoch: memory stays flat however many rows there are.
        order = np.random.default_rng(shuffle_seed).permutation(len(encoded))
        encoded, targets = encoded.take(order), np.asarray(targets)[order]
    ragged = tf.RaggedTensor.from_row_lengths(encoded.values, encoded.lengths)
    # Rows of a ragged tensor come out with a ragged spec of rank 0; an identity
    # map turns them into plain tensors, which the batching ops require.
    data = tf.data.Dataset.from_tensor_slices((ragged, targets)).map(
        tf.autograph.experimental.do_not_convert(lambda ids, target: (ids, target))
    )
    if shuffle_seed is not None:
        data = data.shuffle(min(len(encoded), SHUFFLE_BUFFER), seed=shuffle_seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries(encoded.lengths) if bucket else []
    if boundaries:
        data = data.bucket_by_sequence_length(
            element_length_func=lambda ids, target: tf.shape(ids)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
    else:
        data = data.padded_batch(batch_size)
    return data.prefetch(tf.data.AUTOTUNE)


def batch_plan(lengths: np.ndarray, batch_size: int, boundaries) -> list[np.ndarray]:
    """The rows of each batch, as ``bucket_by_sequence_length`` groups rows arriving in this order.

    A row goes to the bucket of its length (``boundaries`` are the buckets'
    upper bounds, exclusive); a bucket that reaches ``batch_size`` rows is
    emitted as a batch; at the end the partly filled buckets follow, in
    bucket order.  Without boundaries: consecutive runs of ``batch_size``.

    Args:
        lengths: Length of each row, in arrival order.
        batch_size: Rows per batch.
        boundaries: Bucket upper bounds (ascending), or empty.

    Returns:
        One int64 array of row positions per batch.

    Example:
        >>> [batch.tolist() for batch in batch_plan(np.array([1, 5, 1, 5, 1]), 2, [3])]
        [[0, 2], [1, 3], [4]]
    """
    count = len(lengths)
    if not boundaries:
        return [np.arange(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    bucket_of = np.searchsorted(np.asarray(boundaries), lengths, side="right")
    full, partial = [], []
    for bucket in range(len(boundaries) + 1):
        rows = np.flatnonzero(bucket_of == bucket)
        whole = len(rows) - len(rows) % batch_size
        full.extend(rows[:whole].reshape(-1, batch_size))
        if whole < len(rows):
            partial.append(rows[whole:])
    # A full batch leaves its bucket when its last row arrives.
    full.sort(key=lambda batch: batch[-1])
    return full + partial


def planned_dataset(encoded: EncodedTexts, targets, batch_size: int, bucket: bool = True):
    """Like :func:`make_dataset` without shuffling, but batched and padded in NumPy.

    The rows stay in their given order (callers permute them); batches are
    those of :func:`batch_plan`, each post-padded to its longest row.  Per row,
    ``tf.data``'s ragged slicing and bucketing cost about 6 ms of CPU per batch
    of 64 here, a sixth of a 2-core machine during training; a NumPy batch
    costs tens of microseconds (docs/PERFORMANCE.md).

    Args:
        encoded: The tokenized texts, in batch order.
        targets: One target row per text (NumPy).
        batch_size: Rows per batch.
        bucket: Group rows of similar length.

    Returns:
        A ``tf.data.Dataset`` of ``(ids [rows, longest] int32, targets)``.
    """
    import tensorflow as tf

    targets = np.asarray(targets)
    lengths = encoded.lengths
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    plan = batch_plan(lengths, batch_size, bucket_boundaries(lengths) if bucket else [])

    def batches():
        for rows in plan:
            row_lengths = lengths[rows]
            # Flat positions of the batch's ids: each row's start, plus 0..length-1.
            offsets = np.arange(int(row_lengths.sum())) - np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
            batch = EncodedTexts(encoded.values[np.repeat(starts[rows], row_lengths) + offsets], row_lengths)
            yield batch.padded(int(row_lengths.max())), targets[rows]

    signature = (tf.TensorSpec([None, None], tf.int32),
                 tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype)))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(tf.data.AUTOTUNE)


def dense_dataset(tokenizer, texts, targets, config, shuffle_seed=None):
    """Fixed-length batches for pre-padding, which per-batch post-padding cannot express."""
    import tensorflow as tf

    ids = encode(tokenizer, texts, config.max_len, config.padding, config.truncating)
    data = tf.data.Dataset.from_tensor_slices((ids, targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(ids), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)
