"""Where a training step's time goes: one step of each variant, interleaved in one process, and the input pipeline.

Usage (from the repository root, after the README's install command):

    python bench/train_step.py
    python bench/train_step.py --batch-sizes 64 128 256 --rounds 20

Part 1 times one compiled training step (forward, backward, optimizer) of:

- the classic recipe's step: Keras ``Embedding(20000, 128)`` → ``LSTM(64)`` →
  ``Dense``, Keras's Adam, a ``[32, 34]`` batch without mask (what
  ``bench/train_speed.py``'s reference runs);
- textclf's model for that bench (``TrainConfig(arch="lstm", pooling="last")``:
  ``GatherEmbedding``, spatial dropout, masks) on a ``[B, 24]`` post-padded
  batch (lengths 8-24; rt_polarity's bucketed batches average 20 columns)
  with each optimizer: Keras's ``Adam``, ``FusedAdam`` (the default) and
  ``LazyAdam`` (``optimizer=lazy_adam``), all with clipnorm 1 as textclf.

The variants run in turns of 5 back-to-back steps, 15 rounds by default, so a
slow spell on the shared machine hits them all; prints the median and fastest
step and each variant's samples per second relative to the classic step.

Part 2 measures the CPU seconds one epoch of rt_polarity's training batches
(batch 64, length buckets) costs to produce, from ``tf.data``'s ragged
bucketing (``bucket_by_sequence_length``, the reference) and from the NumPy-planned batches
the training loop uses (``textclf.training.batches.planned_dataset``).
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VOCABULARY = 20000


def step_function(model, optimizer, ids, targets):
    import keras
    import tensorflow as tf

    optimizer.build(model.trainable_variables)
    loss_function = keras.losses.BinaryCrossentropy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_function(targets, model(ids, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return step


def variants(batch_sizes, rng):
    import keras
    import numpy as np
    import tensorflow as tf

    from textclf import TrainConfig, build_model
    from textclf.model.optimizers import FusedAdam, LazyAdam

    def batch(rows, columns, padded):
        ids = rng.integers(1, VOCABULARY, size=(rows, columns)).astype("int32")
        if padded:
            lengths = rng.integers(8, columns + 1, size=rows)
            ids[np.arange(columns)[None, :] >= lengths[:, None]] = 0
        return tf.constant(ids), tf.constant(rng.integers(0, 2, size=(rows, 1)).astype("float32"))

    classic = keras.Sequential([keras.Input((34,), dtype="int32"), keras.layers.Embedding(VOCABULARY, 128),
                                keras.layers.LSTM(64), keras.layers.Dense(1, activation="sigmoid")])
    steps = {("classic recipe, Keras Adam", 32): step_function(classic, keras.optimizers.Adam(1e-3),
                                                               *batch(32, 34, False))}
    config = TrainConfig(arch="lstm", pooling="last")
    for batch_size in batch_sizes:
        ids, targets = batch(batch_size, 24, True)
        for name, optimizer_class in (("Keras Adam", keras.optimizers.Adam), ("FusedAdam (default)", FusedAdam),
                                      ("LazyAdam", LazyAdam)):
            model = build_model(config, VOCABULARY, 2)
            steps[(f"textclf, {name}", batch_size)] = step_function(
                model, optimizer_class(1e-3, clipnorm=config.clipnorm), ids, targets)
    return steps


def time_steps(steps, rounds):
    import numpy as np

    seconds = {key: [] for key in steps}
    for step in steps.values():
        step(), step()  # Tracing and warm-up.
    for _ in range(rounds):
        for key, step in steps.items():
            for _ in range(5):
                started = time.perf_counter()
                step().numpy()
                seconds[key].append(time.perf_counter() - started)
    classic_key = next(iter(steps))
    classic_rate = classic_key[1] / np.median(seconds[classic_key])
    print("| step | batch | median ms | fastest ms | samples/s (median) | vs classic |")
    print("|---|---|---|---|---|---|")
    for (name, batch_size), values in seconds.items():
        rate = batch_size / np.median(values)
        print(f"| {name} | {batch_size} | {np.median(values) * 1000:.2f} | {np.min(values) * 1000:.2f} | {rate:,.0f} "
              f"| {rate / classic_rate:.2f}x |")


def tf_data_bucketing(encoded, targets, batch_size, boundaries):
    """The reference: tf.data's ragged rows and ``bucket_by_sequence_length``, the same batches as the plan's."""
    import tensorflow as tf

    ragged = tf.RaggedTensor.from_row_lengths(encoded.values, encoded.lengths)
    rows = tf.data.Dataset.from_tensor_slices((ragged, targets)).map(lambda ids, target: (ids, target))
    return rows.bucket_by_sequence_length(lambda ids, target: tf.shape(ids)[0], list(boundaries),
                                          [batch_size] * (len(boundaries) + 1)).prefetch(tf.data.AUTOTUNE)


def pipeline_cpu():
    import collections

    import numpy as np

    from textclf import TrainConfig
    from textclf.data.counts import bucket_boundaries
    from textclf.training.batches import EncodedTexts, planned_dataset
    from textclf.training.prepare import prepare_in_memory
    from textclf.training.rows import epoch_order

    prepared = prepare_in_memory(TrainConfig(max_len=34), REPO / "data" / "rt_polarity.csv")
    texts = prepared.train.texts
    lengths = EncodedTexts.from_texts(prepared.tokenizer, texts, max_len=34).lengths
    boundaries = bucket_boundaries(collections.Counter(lengths.tolist()), 34)
    targets = np.zeros(len(texts), dtype=np.float32)
    print("| input pipeline, one epoch of rt_polarity (batch 64, buckets) | batches | CPU s | wall s |")
    print("|---|---|---|---|")
    for epoch in range(3):
        order = epoch_order(len(texts), 42, epoch)
        ordered = EncodedTexts.from_texts(prepared.tokenizer, [texts[row] for row in order], max_len=34)
        for name, make in (("tf.data ragged bucketing", tf_data_bucketing), ("NumPy-planned batches", planned_dataset)):
            cpu, wall = time.process_time(), time.perf_counter()
            count = sum(1 for _ in make(ordered, targets, 64, boundaries))
            print(f"| {name}, epoch {epoch + 1} | {count} | {time.process_time() - cpu:.3f} | "
                  f"{time.perf_counter() - wall:.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.rounds < 1 or min(args.batch_sizes) < 1:
        parser.error("--rounds and --batch-sizes must be positive")
    import numpy as np

    time_steps(variants(args.batch_sizes, np.random.default_rng(0)), args.rounds)
    print()
    pipeline_cpu()


if __name__ == "__main__":
    main()
