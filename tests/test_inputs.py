"""The training input pipeline: flat tokenized rows, length buckets, per-batch padding."""

import numpy as np

from textclf import Tokenizer, encode
from textclf.train.batches import EncodedTexts, batch_plan, bucket_boundaries, make_dataset, planned_dataset

TEXTS = ["a b c d e f", "a", "", "b c", "zzz unknown", "c c c"]


def fitted_tokenizer():
    tokenizer = Tokenizer(oov_token="[UNK]")
    tokenizer.fit_on_texts(["a b c d e f", "c c"])  # [UNK]=1 c=2 a=3 b=4 d=5 e=6 f=7
    return tokenizer


def test_encoded_rows_match_encode_and_take_reorders():
    tokenizer = fitted_tokenizer()
    encoded = EncodedTexts.from_texts(tokenizer, TEXTS, max_len=4)
    assert encoded.lengths.tolist() == [4, 1, 1, 2, 2, 3]
    np.testing.assert_array_equal(encoded.padded(4), encode(tokenizer, TEXTS, 4))
    reordered = encoded.take(np.array([5, 0, 2]))
    np.testing.assert_array_equal(reordered.padded(4), encode(tokenizer, [TEXTS[5], TEXTS[0], TEXTS[2]], 4))
    end = EncodedTexts.from_texts(tokenizer, TEXTS, max_len=4, truncating="pre")
    np.testing.assert_array_equal(end.padded(4), encode(tokenizer, TEXTS, 4, truncating="pre"))


def test_bucket_boundaries_split_lengths_evenly():
    assert bucket_boundaries(np.array([1] * 50 + [10] * 50), buckets=2) == [7]  # median 5.5 → 6, + 1
    assert bucket_boundaries(np.arange(1, 101), buckets=4) == [27, 52, 77]
    assert bucket_boundaries(np.array([], dtype=np.int64)) == []


def test_batches_are_padded_to_their_longest_row_and_cover_every_row_once():
    tokenizer = fitted_tokenizer()
    texts = [" ".join(["a"] * (index % 7 + 1)) for index in range(200)]
    encoded = EncodedTexts.from_texts(tokenizer, texts, max_len=6)
    targets = np.arange(200, dtype=np.int32)
    seen = []
    for ids, batch_targets in make_dataset(encoded, targets, batch_size=16, shuffle_seed=1):
        ids = ids.numpy()
        assert (ids != 0).sum(axis=1).max() == ids.shape[1]  # No all-padding column.
        for row, target in zip(ids, batch_targets.numpy()):
            np.testing.assert_array_equal(row[row != 0], encoded.padded(6)[target][encoded.padded(6)[target] != 0])
        seen.extend(batch_targets.numpy().tolist())
    assert sorted(seen) == list(range(200))
    first_epoch = [t.numpy().tolist() for _, t in make_dataset(encoded, targets, 16, shuffle_seed=1)]
    again = [t.numpy().tolist() for _, t in make_dataset(encoded, targets, 16, shuffle_seed=1)]
    assert first_epoch == again  # Same seed, same order.


def test_batch_plan_groups_like_bucket_by_sequence_length():
    # Buckets: length < 3, 3 <= length < 6, >= 6.  Full batches leave when their last row arrives.
    lengths = np.array([1, 4, 7, 2, 5, 1, 8, 4, 2])
    plan = batch_plan(lengths, batch_size=2, boundaries=[3, 6])
    assert [batch.tolist() for batch in plan] == [[0, 3], [1, 4], [2, 6], [5, 8], [7]]
    assert [batch.tolist() for batch in batch_plan(lengths, 4, [])] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def test_planned_batches_equal_tf_data_bucketing():
    tokenizer = fitted_tokenizer()
    texts = [" ".join(["a", "b", "c"][: index % 3 + 1] * (index % 4 + 1)) for index in range(40)]
    encoded = EncodedTexts.from_texts(tokenizer, texts, max_len=9)
    targets = np.arange(40, dtype=np.int32)

    def batches(dataset):
        return sorted((ids.numpy().tolist(), batch_targets.numpy().tolist()) for ids, batch_targets in dataset)

    # Same batches, each padded to its longest row, as tf.data's ragged bucketing (whose order of the partial
    # batches at the end is its own); without buckets, the same batches in the same order.
    assert batches(planned_dataset(encoded, targets, 8)) == batches(make_dataset(encoded, targets, 8))
    def in_order(dataset):
        return [(ids.numpy().tolist(), batch_targets.numpy().tolist()) for ids, batch_targets in dataset]

    assert in_order(planned_dataset(encoded, targets, 8, bucket=False)) == in_order(
        make_dataset(encoded, targets, 8, bucket=False))
    first_ids, first_targets = next(iter(planned_dataset(encoded, targets, 3, bucket=False)))
    np.testing.assert_array_equal(first_ids.numpy(), [[3, 0, 0, 0, 0, 0, 0, 0, 0],
                                                      [3, 4, 3, 4, 0, 0, 0, 0, 0],
                                                      [3, 4, 2, 3, 4, 2, 3, 4, 2]])
    np.testing.assert_array_equal(first_targets.numpy(), [0, 1, 2])
