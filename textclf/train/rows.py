"""Input pipelines for the distributed training loop: sharded per worker, ordered per epoch.

``textclf.train.batches`` shuffles with ``reshuffle_each_iteration``, so the order of
epoch ``k`` depends on how many epochs this process has already iterated.
A resumed run must see exactly the batches the interrupted one had not yet
trained on, so here each epoch's order is a function of ``(seed, epoch)``
alone and the batches already trained on are skipped.  Batching itself
(length buckets, per-batch padding) is ``textclf.train.batches``'s, planned in NumPy.
"""

from __future__ import annotations

import numpy as np

from textclf.train.batches import EncodedTexts, planned_dataset
from textclf.text.sequences import encode


class TokenizedRows:
    """Texts tokenized once, with their targets; any subset is batched on demand.

    Args:
        tokenizer: The fitted tokenizer.
        texts: The texts.
        targets: One target row per text (NumPy).
        config: Settings (``max_len``, ``padding``, ``truncating``).
    """

    def __init__(self, tokenizer, texts, targets, config):
        self.targets = targets
        self.dense = None
        if config.padding == "pre":
            # Per-batch post-padding cannot express pre-padding: keep fixed-length rows.
            self.dense = encode(tokenizer, texts, config.max_len, config.padding, config.truncating, trim=True)
        else:
            self.encoded = EncodedTexts.from_texts(tokenizer, texts, config.max_len, config.truncating)
            self.starts = np.concatenate([[0], np.cumsum(self.encoded.lengths)[:-1]]).astype(np.int64)

    def __len__(self):
        return len(self.targets)

    def _encoded_subset(self, rows: np.ndarray) -> EncodedTexts:
        lengths = self.encoded.lengths[rows]
        # Position of every id of the chosen rows in the flat array, without a Python loop.
        new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        positions = np.repeat(self.starts[rows] - new_starts, lengths) + np.arange(int(lengths.sum()))
        return EncodedTexts(self.encoded.values[positions], lengths)

    def dataset(self, rows: np.ndarray, batch_size: int, bucket: bool):
        """``(ids, targets)`` batches of ``rows``, in that order (or length-bucketed from it).

        Args:
            rows: Row indices.
            batch_size: Rows per batch (per replica).
            bucket: Group rows of similar length (post-padding only).
        """
        import tensorflow as tf

        if self.dense is not None:
            data = tf.data.Dataset.from_tensor_slices((self.dense[rows], self.targets[rows]))
            return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return planned_dataset(self._encoded_subset(rows), self.targets[rows], batch_size, bucket=bucket)


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``count`` rows for ``epoch``: the same in every process and after a resume."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def input_function(rows: TokenizedRows, global_batch_size: int, seed=None, epoch=0, skip_steps=0, bucket=False):
    """A function for ``strategy.distribute_datasets_from_function``.

    Each worker (input pipeline) takes every n-th row, so the workers' shards
    are disjoint and together cover every row; the per-replica batch is the
    global batch divided by the number of replicas.

    Args:
        rows: All rows.
        global_batch_size: Rows per step over all replicas (``batch_size``).
        seed: Seed of the per-epoch order; ``None`` keeps the row order (validation).
        epoch: The epoch (0-based) whose order to use.
        skip_steps: Training steps of this epoch already done (a resumed run).
        bucket: Group rows of similar length.
    """

    def make(context):
        shard = np.arange(len(rows))[context.input_pipeline_id::context.num_input_pipelines]
        if seed is not None:
            shard = shard[epoch_order(len(shard), seed, epoch)]
        data = rows.dataset(shard, context.get_per_replica_batch_size(global_batch_size), bucket)
        # Every step takes one batch for each replica this pipeline feeds.
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        return data.skip(skip_steps * replicas_here) if skip_steps else data

    return make
