"""Rows in memory: flat tokenized rows, length buckets, per-batch padding, the per-epoch order (train/batches, train/rows)."""

import numpy as np
import tensorflow as tf

from textclf import Tokenizer, TrainConfig, encode
from textclf.data.counts import bucket_boundaries
from textclf.training.batches import EncodedTexts, batch_plan, planned_dataset
from textclf.training.rows import TokenizedRows, epoch_order, input_function

TEXTS = ["a b c d e f", "a", "", "b c", "zzz unknown", "c c c"]


def fitted_tokenizer():
    tokenizer = Tokenizer(oov_token="[UNK]")
    tokenizer.fit_on_texts(["a b c d e f", "c c"])  # [UNK]=1 c=2 a=3 b=4 d=5 e=6 f=7
    return tokenizer


def test_encoded_rows_match_encode():
    tokenizer = fitted_tokenizer()
    encoded = EncodedTexts.from_texts(tokenizer, TEXTS, max_len=4)
    assert encoded.lengths.tolist() == [4, 1, 1, 2, 2, 3]
    np.testing.assert_array_equal(encoded.padded(4), encode(tokenizer, TEXTS, 4))
    end = EncodedTexts.from_texts(tokenizer, TEXTS, max_len=4, truncating="pre")
    np.testing.assert_array_equal(end.padded(4), encode(tokenizer, TEXTS, 4, truncating="pre"))


def test_batch_plan_groups_like_bucket_by_sequence_length():
    # Buckets: length < 3, 3 <= length < 6, >= 6.  Full batches leave when their last row arrives.
    lengths = np.array([1, 4, 7, 2, 5, 1, 8, 4, 2])
    plan = batch_plan(lengths, batch_size=2, boundaries=[3, 6])
    assert [batch.tolist() for batch in plan] == [[0, 3], [1, 4], [2, 6], [5, 8], [7]]
    assert [batch.tolist() for batch in batch_plan(lengths, 4, [])] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def tf_data_bucketing(encoded, targets, batch_size, boundaries):
    """The reference: tf.data's ragged rows and bucket_by_sequence_length (what the NumPy plan replaces)."""
    ragged = tf.RaggedTensor.from_row_lengths(encoded.values, encoded.lengths)
    rows = tf.data.Dataset.from_tensor_slices((ragged, targets)).map(lambda ids, target: (ids, target))
    if not boundaries:
        return rows.padded_batch(batch_size)
    return rows.bucket_by_sequence_length(lambda ids, target: tf.shape(ids)[0], list(boundaries),
                                          [batch_size] * (len(boundaries) + 1))


def test_planned_batches_equal_tf_data_bucketing():
    tokenizer = fitted_tokenizer()
    texts = [" ".join(["a", "b", "c"][: index % 3 + 1] * (index % 4 + 1)) for index in range(40)]
    encoded = EncodedTexts.from_texts(tokenizer, texts, max_len=9)
    targets = np.arange(40, dtype=np.int32)
    boundaries = bucket_boundaries({int(n): int((encoded.lengths == n).sum()) for n in set(encoded.lengths)}, 9)

    def batches(dataset):
        return sorted((ids.numpy().tolist(), batch_targets.numpy().tolist()) for ids, batch_targets in dataset)

    def in_order(dataset):
        return [(ids.numpy().tolist(), batch_targets.numpy().tolist()) for ids, batch_targets in dataset]

    # Same batches, each padded to its longest row, as tf.data's ragged bucketing (whose order of the partial
    # batches at the end is its own); without buckets, the same batches in the same order.
    assert batches(planned_dataset(encoded, targets, 8, boundaries)) == batches(
        tf_data_bucketing(encoded, targets, 8, boundaries))
    assert in_order(planned_dataset(encoded, targets, 8)) == in_order(tf_data_bucketing(encoded, targets, 8, []))
    first_ids, first_targets = next(iter(planned_dataset(encoded, targets, 3)))
    np.testing.assert_array_equal(first_ids.numpy(), [[3, 0, 0, 0, 0, 0, 0, 0, 0],
                                                      [3, 4, 3, 4, 0, 0, 0, 0, 0],
                                                      [3, 4, 2, 3, 4, 2, 3, 4, 2]])
    np.testing.assert_array_equal(first_targets.numpy(), [0, 1, 2])


def test_tokenized_rows_batch_each_row_once_in_the_order_of_seed_and_epoch():
    tokenizer = fitted_tokenizer()
    texts = [" ".join(["a"] * (index % 7 + 1)) for index in range(200)]
    labels = ["x" if index % 3 else "y" for index in range(200)]
    config = TrainConfig(max_len=6)
    rows = TokenizedRows(tokenizer, texts, labels, config, ["x", "y"])
    assert len(rows) == 200 and rows.label_counts == {"x": 133, "y": 67}
    expected_ids = encode(tokenizer, texts, 6)

    def epoch(seed, number, bucket=True):
        order = []
        for ids, _ in rows.batches(16, seed=seed, epoch=number, bucket=bucket):
            ids = ids.numpy()
            assert (ids != 0).sum(axis=1).max() == ids.shape[1]  # Padded to its longest row only.
            order.extend((ids != 0).sum(axis=1).tolist())
        return order

    # Without buckets, batches follow the epoch's permutation exactly.
    permutation = epoch_order(200, seed=1, epoch=0)
    assert epoch(1, 0, bucket=False) == [int((expected_ids[row] != 0).sum()) for row in permutation]
    assert sorted(epoch(1, 0)) == sorted(int((row != 0).sum()) for row in expected_ids)  # Every row once.
    assert epoch(1, 0) == epoch(1, 0)  # The same (seed, epoch), the same batches: a resumed run sees them again.
    assert epoch(1, 0) != epoch(1, 1)
    targets = np.concatenate([batch[1].numpy() for batch in rows.batches(64)])
    np.testing.assert_array_equal(targets[:, 0], [0.0 if label == "x" else 1.0 for label in labels])


def test_input_function_shards_rows_between_pipelines_and_skips_trained_steps():
    tokenizer = fitted_tokenizer()
    texts, labels = [" ".join(["a"] * (index % 5 + 1)) for index in range(20)], ["x", "y"] * 10
    rows = TokenizedRows(tokenizer, texts, labels, TrainConfig(max_len=6), ["x", "y"])
    make = input_function(rows, global_batch_size=4, seed=None, skip_steps=1)
    first = make(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0, num_replicas_in_sync=2))
    second = make(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2))
    lengths = [[int((row != 0).sum()) for batch, _ in data for row in batch.numpy()] for data in (first, second)]
    # Pipeline 0 holds rows 0, 2, 4, ... in batches of 2 (4 over 2 replicas), less the first batch (skipped).
    assert lengths == [[5, 2, 4, 1, 3, 5, 2, 4], [1, 3, 5, 2, 4, 1, 3, 5]]


def test_pre_padding_keeps_fixed_length_rows():
    tokenizer = fitted_tokenizer()
    config = TrainConfig(max_len=4, padding="pre")
    rows = TokenizedRows(tokenizer, TEXTS, ["x", "y"] * 3, config, ["x", "y"])
    ids = np.concatenate([batch.numpy() for batch, _ in rows.batches(4)])
    np.testing.assert_array_equal(ids, encode(tokenizer, TEXTS, 4, padding="pre", truncating=config.truncating))
    assert ids[0].tolist() == [2, 5, 6, 7]  # "a b c d e f" keeps its last 4 words (c d e f; truncating="pre").


def test_planned_batches_run_no_python_generator():
    # Dataset.from_generator's op fixes glibc's mmap threshold for the whole process (TensorFlow's Python 3.11
    # memory patch), which made the wide branch's solver fault on every large temporary.
    tokenizer = fitted_tokenizer()
    encoded = EncodedTexts.from_texts(tokenizer, ["a b", "c", "a b c a"], max_len=9)
    graph = tf.compat.v1.GraphDef.FromString(planned_dataset(encoded, np.array([0, 1, 0]), 2)
                                             ._as_serialized_graph().numpy())
    # from_generator's ops sit in a function of the graph's library.
    ops = {node.op for node in graph.node} | {node.op for function in graph.library.function
                                              for node in function.node_def}
    assert "TensorSliceDataset" in ops and not ops & {"GeneratorDataset", "PyFunc", "EagerPyFunc"}
