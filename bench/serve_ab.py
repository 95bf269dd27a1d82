"""A/B of export folders: the same sentences through each ``serving_default``, interleaved, in one process.

Usage (export the same run with two versions of the code first, e.g. from two checkouts):

    python bench/serve_ab.py before=/tmp/exports/a/1 after=/tmp/exports/b/1 --batches 1 32 1024

For each batch size, calls alternate between the exports (one call each per round, after a warm-up), so a
busy machine slows them alike; prints p50/p90 and each export's p50 time as a ratio of the first one's, and the
largest score difference from the first export on 1,024 sentences.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", help="NAME=FOLDER, a SavedModel version folder each")
    parser.add_argument("--data", default="rt_polarity", help="data/<NAME>.csv, source of the sentences")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 1024])
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from textclf import load_dataset

    data = load_dataset(REPO / "data" / f"{args.data}.csv")
    rng = random.Random(0)
    sentences = [data.texts[rng.randrange(len(data))] for _ in range(1024)]
    exports = dict(argument.split("=", 1) for argument in args.exports)
    signatures = {name: tf.saved_model.load(folder).signatures["serving_default"] for name, folder in exports.items()}
    first = next(iter(signatures))
    reference = signatures[first](text=tf.constant(sentences))["scores"].numpy()
    for name, signature in signatures.items():
        difference = np.abs(signature(text=tf.constant(sentences))["scores"].numpy() - reference).max()
        print(f"{name}: largest score difference from {first}: {difference:.2e}")
    for batch in args.batches:
        texts = [tf.constant(sentences[start:start + batch]) for start in range(0, 1024, batch)][:256]
        repeats = 600 if batch == 1 else 100 if batch < 512 else 40
        calls = {name: iter(range(10**9)) for name in signatures}
        seconds = {name: [] for name in signatures}
        for round_number in range(repeats + 10):
            for name, signature in signatures.items():
                text = texts[next(calls[name]) % len(texts)]
                started = time.perf_counter()
                signature(text=text)
                if round_number >= 10:
                    seconds[name].append(time.perf_counter() - started)
        print(f"batch {batch} (load average {os.getloadavg()[0]:.2f})")
        base = statistics.median(seconds[first])
        for name, values in seconds.items():
            values.sort()
            p50 = statistics.median(values)
            print(f"  {name:30s} p50 {p50 * 1e3:8.3f} ms  p90 {values[int(0.9 * len(values))] * 1e3:8.3f} ms  "
                  f"{batch / p50:10,.0f} sentences/s  ratio {p50 / base:.3f}")


if __name__ == "__main__":
    main()
