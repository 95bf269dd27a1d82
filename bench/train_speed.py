"""Training throughput: the classic recipe against textclf's pipeline, same data, same architecture.

Usage (from the repository root, after the README's install command):

    python bench/train_speed.py --data rt_polarity
    python bench/train_speed.py --data news_source --reference-epochs 2

Both variants train Embedding(20k words, 128) → LSTM(64) → Dense on the same
stratified 80/20 split:

- reference, the classic recipe written out here: Tokenizer(num_words=20000),
  ``pad_sequences`` to the 95th-percentile length with Keras's default
  pre-padding/pre-truncation and no mask, batch 32, Adam 1e-3, a fixed number
  of epochs, ``model.fit`` on NumPy arrays;
- textclf: ``TrainConfig(arch="lstm", pooling="last")`` with every other
  setting at its default (length bucketing, masks, post-padding, batch size,
  learning rate, early stopping), trained by ``textclf.training.run.train``, the
  path ``textclf train`` takes (the checkpointed loop); ``--set NAME=VALUE``
  changes a setting of this variant to measure a lever.

Each variant runs in its own process so peak memory (max RSS) is its own,
``--repeats`` times (default 3) in alternation (reference, textclf,
reference, ...), so a slow spell on a shared machine hits both.  Repeat ``k``
seeds both models' initial weights, dropout and shuffling with ``42 + k`` (the
split stays the one of seed 42): one seed's macro-F1 moved by about 0.01
(rt_polarity) and 0.06 (news_source, final-state LSTM) between seeds, so
the mean over the repeats is what the comparison uses.  Samples/s
and tokens/s (non-padding tokens) use the fastest epoch after the first
(which also pays for tracing) over every repeat: on the shared 2-core
machine epochs take either their usual time or about twice it when another
job takes a core, so the fastest is the variant's own speed; the ratio of
the median epochs is printed too, and each repeat's ratio (its textclf run
over the reference run just before it, same seed) with their median, which
one lucky or unlucky run moves least.
Epoch times are training time on both sides: the classic recipe fits without
validation data, and textclf's time is the training part of its epoch (the
loop's log line gives both; the validation pass it runs after every epoch,
for early stopping, is timed apart and printed below the table, with the ratio
it would give).  Prints a table and the ratios.
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from settings import parse_setting  # noqa: E402  (bench/settings.py)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    return EpochTimer()



def split_of(data_name):
    from textclf import TrainConfig
    from textclf.training.prepare import prepare_in_memory

    return prepare_in_memory(TrainConfig(), REPO / "data" / f"{data_name}.csv")


def run_reference(data_name, epochs, seed):
    import keras
    import numpy as np

    from textclf import Tokenizer
    from textclf.evaluation.metrics import classification_metrics

    split = split_of(data_name)
    keras.utils.set_random_seed(seed)
    tokenizer = Tokenizer(num_words=20000)
    tokenizer.fit_on_texts(split.train.texts)
    train_sequences = tokenizer.texts_to_sequences(split.train.texts)
    max_len = int(math.ceil(np.percentile([len(s) for s in train_sequences], 95)))
    x_train = keras.utils.pad_sequences(train_sequences, maxlen=max_len)
    x_valid = keras.utils.pad_sequences(tokenizer.texts_to_sequences(split.valid.texts), maxlen=max_len)
    classes = split.classes
    positions = {label: index for index, label in enumerate(classes)}
    y_train = np.array([positions[label] for label in split.train.labels])
    binary = len(classes) == 2
    model = keras.Sequential([
        keras.Input(shape=(max_len,), dtype="int32"),
        keras.layers.Embedding(20000, 128),
        keras.layers.LSTM(64),
        keras.layers.Dense(1, activation="sigmoid") if binary else keras.layers.Dense(len(classes), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = epoch_timer()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, callbacks=[timer], verbose=0)
    probabilities = model.predict(x_valid, batch_size=256, verbose=0)
    predicted = (probabilities[:, 0] > 0.5).astype(int) if binary else probabilities.argmax(axis=1)
    metrics = classification_metrics(split.valid.labels, [classes[i] for i in predicted], classes)
    tokens = int(np.minimum([len(s) for s in train_sequences], max_len).sum())
    return {"variant": "classic recipe", "max_len": max_len, "batch_size": 32, "epochs": epochs,
            "epoch_seconds": timer.seconds, "rows": len(x_train), "tokens": tokens, "macro_f1": metrics["macro_f1"]}


def run_textclf(data_name, settings, seed):
    """``textclf train``'s own path (the checkpointed loop), timing each epoch from the loop's log line."""
    import re
    import tempfile

    import numpy as np

    import textclf.training.loop
    from textclf import TrainConfig, tokenizer_from_json
    from textclf.training.run import train

    split = split_of(data_name)
    config = TrainConfig(arch="lstm", units=64, embedding_dim=128, pooling="last", seed=seed).replace(**settings)
    seconds, with_validation, log = [], [], textclf.training.loop.log

    def timed_log(message):
        # "epoch 2/10: loss ... (4.31 s, training 3.90 s)": the whole epoch, then its training steps alone.
        match = re.match(r"epoch \d+/\d+: .*\((\d+\.\d+) s, training (\d+\.\d+) s\)$", message)
        if match:
            with_validation.append(float(match.group(1)))
            seconds.append(float(match.group(2)))
        log(message)

    textclf.training.loop.log = timed_log
    with tempfile.TemporaryDirectory() as folder:
        result = train(split.train, config, valid=split.valid, run_dir=Path(folder) / "runs" / "speed")
        tokenizer = tokenizer_from_json((result.run_dir / "tokenizer.json").read_text(encoding="utf-8"))
    lengths = [min(len(s) or 1, result.config.max_len) for s in tokenizer.texts_to_sequences_generator(split.train.texts)]
    return {"variant": "textclf", "max_len": result.config.max_len, "batch_size": result.config.batch_size,
            "epochs": len(seconds), "epoch_seconds": seconds, "epoch_seconds_with_validation": with_validation,
            "rows": len(split.train),
            "tokens": int(np.sum(lengths)), "macro_f1": result.metrics["macro_f1"]}


def child(variant, data_name, reference_epochs, settings, seed):
    result = (run_reference(data_name, reference_epochs, seed) if variant == "reference"
              else run_textclf(data_name, settings, seed))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def summarize(results):
    """One row per variant from its repeats: fastest steady epoch, mean macro-F1, largest peak RSS."""
    def steady(result):
        return result["epoch_seconds"][1:] or result["epoch_seconds"]

    seconds = min(value for result in results for value in steady(result))
    first = results[0]
    return {**first, "epoch_s": seconds, "samples_per_s": first["rows"] / seconds,
            "median_epoch_s": statistics.median(value for result in results for value in steady(result)),
            "tokens_per_s": first["tokens"] / seconds,
            "macro_f1": statistics.mean(result["macro_f1"] for result in results),
            "macro_f1_each": [result["macro_f1"] for result in results],
            "samples_per_s_each": [first["rows"] / min(steady(result)) for result in results],
            "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
            "with_validation_s": min((value for result in results
                                      for value in result.get("epoch_seconds_with_validation", [])[1:]), default=None)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="rt_polarity", help="data/<NAME>.csv")
    parser.add_argument("--reference-epochs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a TrainConfig setting for the textclf variant, e.g. --set batch_size=256 (repeatable)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each variant, alternating, with model seeds 42, 43, ... [3]")
    parser.add_argument("--variant", choices=("reference", "textclf"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    settings = dict(parse_setting(text) for text in args.set)
    if args.variant:
        child(args.variant, args.data, args.reference_epochs, settings, args.seed)
        return
    runs = {"reference": [], "textclf": []}
    order = [(42 + repeat, variant) for repeat in range(args.repeats) for variant in ("reference", "textclf")]
    for seed, variant in order:
        process = subprocess.run([sys.executable, __file__, "--variant", variant, "--data", args.data,
                                  "--seed", str(seed), "--reference-epochs", str(args.reference_epochs),
                                  *[part for text in args.set for part in ("--set", text)]],
                                 capture_output=True, text=True, check=False)
        lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode or not lines:
            sys.exit(f"{variant} failed:\n{process.stderr[-3000:]}")
        runs[variant].append(json.loads(lines[-1][7:]))
    results = [summarize(runs["reference"]), summarize(runs["textclf"])]
    reference, ours = results
    print(f"data/{args.data}.csv, Embedding 128 → LSTM 64, {reference['rows']} training rows, same split"
          + (f"; textclf settings {settings}" if settings else ""))
    print("| variant | batch | max_len | epochs | fastest epoch s | median epoch s | samples/s | tokens/s "
          "| peak RSS MB | val macro-F1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['variant']} | {row['batch_size']} | {row['max_len']} | {row['epochs']} | {row['epoch_s']:.2f} | "
              f"{row['median_epoch_s']:.2f} | {row['samples_per_s']:.0f} | {row['tokens_per_s']:.0f} | "
              f"{row['peak_rss_mb']:.0f} | {row['macro_f1']:.4f} |")
    print(f"ratio textclf / classic: samples/s {ours['samples_per_s'] / reference['samples_per_s']:.2f}x "
          f"(median epochs: {reference['median_epoch_s'] / ours['median_epoch_s']:.2f}x), "
          f"peak RSS {ours['peak_rss_mb'] / reference['peak_rss_mb']:.2f}x, "
          f"macro-F1 {ours['macro_f1'] - reference['macro_f1']:+.4f}")
    paired = [mine / theirs for mine, theirs in zip(ours["samples_per_s_each"], reference["samples_per_s_each"])]
    print("ratio of each repeat's pair (same seed, run back to back): "
          + ", ".join(f"{value:.2f}x" for value in paired) + f"; median {statistics.median(paired):.2f}x")
    if ours["with_validation_s"]:
        with_validation = ours["rows"] / ours["with_validation_s"]
        print(f"textclf with its per-epoch validation pass: fastest epoch {ours['with_validation_s']:.2f} s, "
              f"{with_validation:.0f} samples/s, "
              f"{with_validation / reference['samples_per_s']:.2f}x the classic recipe")
    for row in results:
        print(f"{row['variant']}, each repeat (seeds 42, 43, ...): samples/s (fastest epoch) "
              + ", ".join(f"{value:.0f}" for value in row["samples_per_s_each"])
              + "; macro-F1 " + ", ".join(f"{value:.4f}" for value in row["macro_f1_each"]))


if __name__ == "__main__":
    main()
