"""Batches of rows in memory: tokenized once, kept flat, grouped by length.

The classic recipe pads every text to one fixed length, so a 10-word review
costs as many LSTM steps as the longest allowed one.  Here the ids of all
texts are kept as one flat int32 array plus row lengths (no Python list per
text), and rows of similar length are batched together (the rule of
``tf.data``'s ``bucket_by_sequence_length``, planned in NumPy), each batch
padded only to its own longest row.  With post-padding and masking, the model
computes exactly what it would on the fixed-length matrix (masked steps carry
the state forward).
"""

from __future__ import annotations

from array import array

import numpy as np

from textclf.text.sequences import empty_index, truncated


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

    def padded(self, max_len: int) -> np.ndarray:
        """The post-padded ``[rows, max_len]`` matrix (what ``encode`` returns with padding="post")."""
        matrix = np.zeros((len(self), max_len), dtype=np.int32)
        columns = np.arange(max_len)
        matrix[columns[None, :] < self.lengths[:, None]] = self.values
        return matrix


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


def planned_dataset(encoded: EncodedTexts, targets, batch_size: int, boundaries=()):
    """``(ids, targets)`` batches of rows in memory, grouped and padded in NumPy.

    The rows stay in their given order (callers permute them); batches are
    those of :func:`batch_plan`, each post-padded to its longest row.
    ``tf.data``'s ragged slicing and ``bucket_by_sequence_length`` make the
    same batches but cost about 6 ms of CPU per batch of 64 here, a sixth of a
    2-core machine during training; a NumPy batch costs tens of microseconds
    (docs/PERFORMANCE.md, bench/train_step.py).

    Args:
        encoded: The tokenized texts, in batch order.
        targets: One target row per text (NumPy).
        batch_size: Rows per batch.
        boundaries: Length-bucket upper bounds (:func:`textclf.data.counts.bucket_boundaries`);
            empty for consecutive batches.

    Returns:
        A ``tf.data.Dataset`` of ``(ids [rows, longest] int32, targets)``.
    """
    import tensorflow as tf

    targets = np.asarray(targets)
    lengths = encoded.lengths
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    plan = batch_plan(lengths, batch_size, list(boundaries))

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
