"""Rows read from a data file each epoch (:mod:`textclf.data.streaming`): the streamed ``rows.Rows``.

A generator reads the file, keeps one part's rows of one input pipeline, tokenizes them and hands tf.data chunks
of :data:`CHUNK_ROWS` rows as flat arrays, batched like rows in memory.  Training rows pass through a shuffle
buffer seeded from ``(seed, epoch, pipeline)``, so a resumed run sees the same epoch order and skips what it trained.
"""

from __future__ import annotations

import collections
import itertools
from array import array

import numpy as np

from textclf.data.counts import bucket_boundaries
from textclf.data.streaming import RowSplit, StreamSource
from textclf.data.labels import row_labels
from textclf.training.batches import encoded_sequences
from textclf.errors import TextclfError

# Rows per element of the generator: one Python-to-TensorFlow hand-over per chunk, not per row.
CHUNK_ROWS = 1024
# Rows held by the per-epoch shuffle of streamed training rows (memory stays flat however large the file).
SHUFFLE_BUFFER = 16384
PARTS = ("train", "valid")


class StreamedRows:
    """One part (``train`` or ``valid``) of a streamed file, tokenized as it is read.

    ``split`` decides each row's part (``None``: every row of ``source`` is in ``part``); ``count``, ``lengths``
    (the token-count histogram, for buckets), ``fingerprint`` and ``label_counts`` come from the counting pass.

    Example:
        >>> rows = StreamedRows(source, "train", RowSplit(42, 0.2), summary.train_rows, tokenizer, config, classes)
        >>> batches = rows.batches(batch_size=64, seed=42, epoch=0, bucket=True)
    """

    def __init__(self, source: StreamSource, part: str, split: RowSplit | None, count: int, tokenizer, config,
                 classes, lengths: dict | None = None, fingerprint: str = "", label_counts: dict | None = None):
        if part not in PARTS:
            raise TextclfError(f"`part` must be one of {', '.join(PARTS)}. Received: part={part!r}")
        self.source, self.part, self.count = source, part, count
        self.split_seed = None if split is None else (split.seed, split.fraction)
        self.tokenizer, self.config, self.classes = tokenizer, config, list(classes)
        self.lengths = lengths or {}
        self.fingerprint = f"{fingerprint}:{part}"
        self.label_counts = label_counts or {}
        self.position = {name: index for index, name in enumerate(self.classes)}

    def __len__(self):
        return self.count

    def _part_rows(self, pipeline_id: int, pipelines: int):
        """``(text, label)`` of this part's rows whose number in the part is ``pipeline_id`` modulo ``pipelines``."""
        # A fresh split per pass: RowSplit caches a block, and two passes may run at once.
        split = None if self.split_seed is None else RowSplit(*self.split_seed)
        rows = ((text, label) for number, (_, text, label) in enumerate(self.source.rows())
                if split is None or split.is_validation(number) == (self.part == "valid"))
        yield from itertools.islice(rows, pipeline_id, None, pipelines)

    def ordered_texts(self):
        """This part's texts, in the order :meth:`batches` without a ``seed`` gives their rows."""
        return (text for text, _ in self._part_rows(0, 1))

    def _target(self, label: str):
        if self.config.multi_label:
            return [self.position[name] for name in row_labels(label, self.config.label_sep)]
        return self.position[label]

    def encoded_rows(self, pipeline_id: int = 0, pipelines: int = 1):
        """``(ids, target)`` per row: int32 ids as :func:`textclf.training.batches.encoded_sequences` makes them."""
        labels: collections.deque = collections.deque()

        def texts():
            # The tokenizer's generator reads one text at a time, so the labels queue never holds more than one.
            for text, label in self._part_rows(pipeline_id, pipelines):
                labels.append(label)
                yield text

        for sequence in encoded_sequences(self.tokenizer, texts(), self.config.max_len, self.config.truncating):
            yield array("i", sequence), self._target(labels.popleft())

    def _shuffled(self, rows, seed: int, epoch: int, pipeline_id: int):
        """``rows`` through a shuffle buffer of ``SHUFFLE_BUFFER`` rows, in an order fixed by the seeds."""
        rng = np.random.default_rng([seed, epoch, pipeline_id])
        buffer, draws = [], []
        for row in rows:
            if len(buffer) < SHUFFLE_BUFFER:
                buffer.append(row)
                continue
            if not draws:
                draws = rng.integers(0, SHUFFLE_BUFFER, 4096).tolist()
            slot = draws.pop()
            yield buffer[slot]
            buffer[slot] = row
        for slot in rng.permutation(len(buffer)).tolist():
            yield buffer[slot]

    def _chunk(self, rows):
        values, lengths = array("i"), array("q")
        for ids, _ in rows:
            values.extend(ids)
            lengths.append(len(ids))
        if self.config.multi_label:
            targets = np.zeros((len(rows), len(self.classes)), dtype=np.float32)
            for index, (_, positions) in enumerate(rows):
                targets[index, positions] = 1.0
        else:
            targets = np.array([target for _, target in rows], dtype=np.int32)
            # The binary head is one sigmoid unit: its target is a float column (setup.targets_of).
            targets = targets.astype(np.float32)[:, None] if len(self.classes) == 2 else targets
        return np.frombuffer(values, dtype=np.int32), np.frombuffer(lengths, dtype=np.int64), targets

    def chunks(self, pipeline_id: int = 0, pipelines: int = 1, seed=None, epoch: int = 0):
        """``(values, lengths, targets)`` NumPy arrays of up to ``CHUNK_ROWS`` rows each."""
        rows = self.encoded_rows(pipeline_id, pipelines)
        if seed is not None:
            rows = self._shuffled(rows, seed, epoch, pipeline_id)
        while pending := list(itertools.islice(rows, CHUNK_ROWS)):
            yield self._chunk(pending)

    def batches(self, batch_size: int, pipeline_id: int = 0, pipelines: int = 1, seed=None, epoch: int = 0,
                bucket: bool = False):
        """See :meth:`textclf.training.rows.Rows.batches`; the shuffle is a buffer seeded with the pipeline too."""
        import tensorflow as tf

        # Targets as _chunk makes them: multi-hot rows, a float column (binary) or class indices.
        target_spec = (tf.TensorSpec([None, len(self.classes)], tf.float32) if self.config.multi_label
                       else tf.TensorSpec([None, 1], tf.float32) if len(self.classes) == 2
                       else tf.TensorSpec([None], tf.int32))
        signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64), target_spec)
        chunks = tf.data.Dataset.from_generator(lambda: self.chunks(pipeline_id, pipelines, seed, epoch),
                                                output_signature=signature)
        rows = chunks.flat_map(lambda values, lengths, targets: tf.data.Dataset.from_tensor_slices(
            (tf.RaggedTensor.from_row_lengths(values, lengths), targets)))
        # Rows of a ragged tensor come out with a ragged spec of rank 0; an identity map makes them plain tensors.
        rows = rows.map(tf.autograph.experimental.do_not_convert(lambda ids, target: (ids, target)))
        max_len = self.config.max_len
        if self.config.padding == "pre":
            # Fixed-length rows padded in front, as TokenizedRows keeps them.
            rows = rows.map(tf.autograph.experimental.do_not_convert(
                lambda ids, target: (tf.pad(ids, [[max_len - tf.shape(ids)[0], 0]]), target)))
            return rows.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        boundaries = bucket_boundaries(self.lengths, max_len) if bucket else []
        if boundaries:
            batches = rows.bucket_by_sequence_length(
                element_length_func=lambda ids, target: tf.shape(ids)[0], bucket_boundaries=boundaries,
                bucket_batch_sizes=[batch_size] * (len(boundaries) + 1))
        else:
            batches = rows.padded_batch(batch_size)
        return batches.prefetch(tf.data.AUTOTUNE)
