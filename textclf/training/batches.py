"""Batches of rows in memory: tokenized once, kept flat, grouped by length.

The ids of all texts are one flat int32 array plus row lengths (no Python list per text); rows of similar length
are batched together (``tf.data``'s ``bucket_by_sequence_length`` rule, planned in NumPy), each batch padded only
to its own longest row.  With post-padding and masking the model computes exactly what it would on the
fixed-length matrix (masked steps carry the state forward).
"""

from __future__ import annotations

import functools
from array import array

import numpy as np

from textclf.text.sequences import empty_index, truncated


def encoded_sequences(tokenizer, texts, max_len: int, truncating: str = "post"):
    """Each text's ids, truncated; ``[oov]`` for a text without tokens (the rules of ``sequences.encode``)."""
    fallback = [empty_index(tokenizer)]
    for sequence in tokenizer.texts_to_sequences_generator(texts):
        yield truncated(sequence or fallback, max_len, truncating)


class EncodedTexts:
    """Truncated id sequences of many texts, stored flat: int32 ``values`` and int64 ``lengths`` (each ≥ 1)."""

    def __init__(self, values: np.ndarray, lengths: np.ndarray):
        self.values = values
        self.lengths = lengths

    def __len__(self):
        return len(self.lengths)

    @classmethod
    def from_texts(cls, tokenizer, texts, max_len: int, truncating: str = "post") -> "EncodedTexts":
        """Tokenizes ``texts`` with the rules of :func:`textclf.text.sequences.encode`, without padding."""
        values, lengths = array("i"), array("q")
        for sequence in encoded_sequences(tokenizer, texts, max_len, truncating):
            values.extend(sequence)
            lengths.append(len(sequence))
        return cls(np.frombuffer(values, dtype=np.int32), np.frombuffer(lengths, dtype=np.int64))

    @functools.cached_property
    def starts(self) -> np.ndarray:
        """Each row's position in ``values``."""
        return np.cumsum(self.lengths) - self.lengths

    def subset(self, rows: np.ndarray) -> "EncodedTexts":
        """The rows at positions ``rows``, in that order (no Python loop)."""
        lengths = self.lengths[rows]
        # Flat positions of the chosen ids: each row's start, plus 0 .. length - 1.
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return EncodedTexts(self.values[np.repeat(self.starts[rows], lengths) + offsets], lengths)

    def padded(self, max_len: int) -> np.ndarray:
        """The post-padded ``[rows, max_len]`` matrix (what ``encode`` returns with padding="post")."""
        matrix = np.zeros((len(self), max_len), dtype=np.int32)
        columns = np.arange(max_len)
        matrix[columns[None, :] < self.lengths[:, None]] = self.values
        return matrix


def batch_plan(lengths: np.ndarray, batch_size: int, boundaries) -> list[np.ndarray]:
    """The row positions of each batch, as ``bucket_by_sequence_length`` groups rows arriving in this order.

    A row goes to the bucket of its length (``boundaries``: ascending exclusive upper bounds); a bucket that
    reaches ``batch_size`` rows is emitted; at the end the partly filled buckets follow, in bucket order.
    Without boundaries: consecutive runs of ``batch_size``.

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
    """``(ids [rows, longest] int32, targets)`` batches: :func:`batch_plan`'s, each post-padded to its longest row.

    The rows stay in their given order (callers permute them).  ``tf.data``'s ragged bucketing makes the same
    batches for about 6 ms of CPU per batch of 64 (docs/PERFORMANCE.md, bench/train_step.py); here NumPy orders
    the rows batch by batch once, and each batch is one slice of a two-level ragged tensor, padded by
    ``to_tensor``.  Not ``Dataset.from_generator``: its op fixes glibc's mmap threshold at 128 KiB for the whole
    process, after which every larger NumPy temporary (the wide branch's solver's) is fresh pages.
    """
    import tensorflow as tf

    targets = np.asarray(targets)
    plan = batch_plan(encoded.lengths, batch_size, list(boundaries))
    order = np.concatenate(plan) if plan else np.zeros(0, np.int64)
    sizes = np.array([len(rows) for rows in plan], np.int64)
    rows = encoded.subset(order)
    ids = tf.RaggedTensor.from_nested_row_lengths(rows.values, [sizes, rows.lengths])  # [batches, rows, ids]
    batches = tf.data.Dataset.from_tensor_slices((ids, tf.RaggedTensor.from_row_lengths(targets[order], sizes)))
    return batches.map(lambda batch, batch_targets: (batch.to_tensor(), batch_targets)).prefetch(tf.data.AUTOTUNE)
