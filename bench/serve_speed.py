"""Serving speed: the raw-text export against Keras ``model.predict`` and the TF-IDF pipeline, one run.

Usage (after the README's main command has exported saved_models/rt_polarity):

    python bench/serve_speed.py                        # saved_models/rt_polarity, data/rt_polarity.csv
    python bench/serve_speed.py --model saved_models/news_source --data news_source

Measures, on sentences drawn from the data file:
- the export, loaded with ``tf.saved_model.load`` (TensorFlow only), one sentence per call: p50/p99 latency;
- the export at batch 1, 32 and 1024: sentences/s;
- the run's Keras model through the classic client path (Python tokenizer, ``pad_sequences``,
  ``model.predict``) on one sentence: p50/p99 latency;
- the TF-IDF + logistic-regression pipeline's ``predict`` at batch 1 and 1024.
Prints a table and the ratios against the targets.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def timings(function, repeats, warmup=20):
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return sorted(seconds)


def percentile(sorted_seconds, share):
    return sorted_seconds[min(len(sorted_seconds) - 1, int(share * len(sorted_seconds)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/rt_polarity", help="export base or version folder")
    parser.add_argument("--data", default="rt_polarity", help="data/<NAME>.csv, source of the sentences")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    import tensorflow as tf

    from textclf import load_dataset
    from textclf.artifacts import resolve_export
    from textclf.baseline import tfidf_pipeline
    from textclf.predict import RunClassifier

    version = resolve_export(args.model)
    metadata = json.loads((version / "textclf.json").read_text())
    data = load_dataset(REPO / "data" / f"{args.data}.csv")
    rng = random.Random(0)
    sentences = [data.texts[rng.randrange(len(data))] for _ in range(1024)]
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]

    rows = []
    single = iter(range(10**9))
    export_single = timings(lambda: signature(text=tf.constant([sentences[next(single) % 1024]])), args.repeats)
    rows.append(("export, 1 sentence per call", export_single, 1))
    for batch in (32, 1024):
        batch_texts = tf.constant(sentences[:batch])
        rows.append((f"export, batch {batch}", timings(lambda: signature(text=batch_texts), max(10, args.repeats // 20)), batch))

    classic = RunClassifier(metadata["run"])
    model, config = classic.run.model, classic.run.config
    keras_single = timings(lambda: model.predict(classic.tokenize([sentences[next(single) % 1024]]), verbose=0),
                           max(30, args.repeats // 5), warmup=5)
    rows.append(("Keras model.predict, 1 sentence per call", keras_single, 1))

    baseline = tfidf_pipeline().fit(data.texts, data.labels)
    rows.append(("TF-IDF + LogReg predict, 1 sentence", timings(lambda: baseline.predict([sentences[next(single) % 1024]]), args.repeats), 1))
    rows.append(("TF-IDF + LogReg predict, batch 1024", timings(lambda: baseline.predict(sentences), 10), 1024))

    print(f"export {version} ({config.arch}, units {config.units}, max_len {config.max_len}); "
          f"sentences from data/{args.data}.csv (mean {statistics.mean(len(s.split()) for s in sentences):.0f} words)")
    print("| path | p50 ms | p99 ms | sentences/s |")
    print("|---|---|---|---|")
    for name, seconds, batch in rows:
        p50 = percentile(seconds, 0.5)
        print(f"| {name} | {p50 * 1e3:.3f} | {percentile(seconds, 0.99) * 1e3:.3f} | {batch / p50:,.0f} |")
    export_p50, keras_p50 = percentile(export_single, 0.5), percentile(keras_single, 0.5)
    batch_rate = 1024 / percentile(rows[2][1], 0.5)
    print(f"export single-sentence p50 {export_p50 * 1e3:.3f} ms (target <= 1 ms); "
          f"{keras_p50 / export_p50:.0f}x faster than model.predict (target >= 50x); "
          f"batch-1024 throughput {batch_rate:,.0f} sentences/s (target >= 25,000)")


if __name__ == "__main__":
    main()
