"""The one data interface of the training loop: :class:`Rows`, in memory (:class:`TokenizedRows`) or streamed.

The loop, validation and the metrics see only this interface (streamed: ``streamed_rows.StreamedRows``).  Each
epoch's order is a function of ``(seed, epoch)`` alone, so a resumed run sees exactly the batches the interrupted
one had not yet trained on, after skipping those it had.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Protocol

import numpy as np

from textclf.data.counts import bucket_boundaries
from textclf.data.labels import label_sets
from textclf.text.sequences import encode
from textclf.training.batches import EncodedTexts, planned_dataset
from textclf.training.setup import targets_of
from textclf.errors import TextclfError


class Rows(Protocol):
    """Labelled rows the loop trains or validates on.

    ``label_counts`` (``{label: rows}``) gives class weights; ``fingerprint`` lets checkpoints refuse other data.
    """

    label_counts: dict
    fingerprint: str

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, pipeline_id: int = 0, pipelines: int = 1, seed=None, epoch: int = 0,
                bucket: bool = False):
        """A ``tf.data.Dataset`` of ``(ids [rows, length] int32, targets)`` batches.

        Input pipeline ``pipeline_id`` takes the rows whose number is ``pipeline_id`` modulo ``pipelines``.
        ``seed`` shuffles with ``(seed, epoch)`` (``None`` keeps the rows' order: validation, predictions);
        ``bucket`` groups rows of similar length (post-padding only).
        """


def fingerprint_of(texts, labels) -> str:
    """SHA-256 of texts and labels, in order."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x1f")
        digest.update(label.encode("utf-8", "surrogatepass") + b"\x1e")
    return digest.hexdigest()


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``count`` rows for ``epoch``: the same in every process and after a resume."""
    return np.random.default_rng([seed, epoch]).permutation(count)


class TokenizedRows:
    """Rows in memory, tokenized once; each epoch batches a permutation of them (``config.max_len`` resolved).

    Example:
        >>> rows = TokenizedRows(tokenizer, ["a fine film", "dull"], ["pos", "neg"], config, ["neg", "pos"])
        >>> next(iter(rows.batches(batch_size=2)))[0].shape
        TensorShape([2, 3])
    """

    def __init__(self, tokenizer, texts, labels, config, classes):
        self.texts = texts  # The wide branch reads the raw text.
        self.targets = targets_of(config, labels, classes)
        names = ([name for row in label_sets(labels, config.label_sep) for name in row] if config.multi_label
                 else labels)
        self.label_counts = dict(collections.Counter(names))
        self.fingerprint = fingerprint_of(texts, labels)
        self.dense = None
        if config.padding == "pre":
            # Per-batch post-padding cannot express pre-padding: keep fixed-length rows.
            self.dense = encode(tokenizer, texts, config.max_len, config.padding, config.truncating, trim=True)
            return
        self.encoded = EncodedTexts.from_texts(tokenizer, texts, config.max_len, config.truncating)
        self.boundaries = bucket_boundaries(collections.Counter(self.encoded.lengths.tolist()), config.max_len)

    def __len__(self):
        return len(self.targets)

    def id_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, lengths)``: every row's ids without padding, flat, and each row's length."""
        if self.dense is None:
            return self.encoded.values, self.encoded.lengths
        present = self.dense > 0
        return self.dense[present], present.sum(axis=1)

    def class_indices(self) -> np.ndarray:
        """Each row's class index (single-label rows)."""
        return (self.targets[:, 0] if self.targets.ndim == 2 else self.targets).astype(np.int64)

    def batches(self, batch_size: int, pipeline_id: int = 0, pipelines: int = 1, seed=None, epoch: int = 0,
                bucket: bool = False):
        """See :meth:`Rows.batches`."""
        import tensorflow as tf

        rows = np.arange(len(self))[pipeline_id::pipelines]
        if seed is not None:
            rows = rows[epoch_order(len(rows), seed, epoch)]
        if self.dense is not None:
            data = tf.data.Dataset.from_tensor_slices((self.dense[rows], self.targets[rows]))
            return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return planned_dataset(self.encoded.subset(rows), self.targets[rows], batch_size,
                               self.boundaries if bucket else ())


def input_function(rows: Rows, global_batch_size: int, seed=None, epoch=0, skip_steps=0, bucket=False):
    """A function for ``strategy.distribute_datasets_from_function``.

    Each input pipeline takes every n-th row (disjoint shards that cover every row), batches of the global batch
    divided by the replicas, and skips the ``skip_steps`` steps of this epoch already done (a resumed run).
    """

    def make(context):
        data = rows.batches(context.get_per_replica_batch_size(global_batch_size), context.input_pipeline_id,
                            context.num_input_pipelines, seed=seed, epoch=epoch, bucket=bucket)
        # Every step takes one batch for each replica this pipeline feeds.
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        return data.skip(skip_steps * replicas_here) if skip_steps else data

    return make


def predictions(model, rows: Rows, multi_label: bool, batch_size: int = 1024):
    """The model's outputs on ``rows``, in order, keeping only what the metrics need.

    Single-label: ``(true, predicted)`` int32 class indices.  Multi-label: ``(targets, probabilities)``, float32
    ``[rows, classes]`` each, which threshold tuning needs whole.
    """
    from textclf.model.factory import class_probabilities, compiled_call

    call, truths, outputs = compiled_call(model), [], []
    for ids, targets in rows.batches(batch_size):
        probabilities = np.asarray(class_probabilities(call(ids)))
        targets = targets.numpy()
        if multi_label:
            truths.append(targets.astype(np.float32))
            outputs.append(probabilities.astype(np.float32))
        else:
            truths.append((targets[:, 0] if targets.ndim == 2 else targets).astype(np.int32))
            outputs.append(probabilities.argmax(axis=1).astype(np.int32))
    if not truths:
        raise TextclfError("There are no rows to predict")
    return np.concatenate(truths), np.concatenate(outputs)
