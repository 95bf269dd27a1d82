"""Scaling: time and peak memory of fitting the tokenizer and one training epoch at 10k, 100k and 1M rows.

Usage (from the repository root, after the README's install command):

    python bench/scaling.py                       # 10k, 100k, 1M rows; writes docs/scaling.png
    python bench/scaling.py --rows 10000 100000   # a quicker check

Rows are drawn with replacement from data/rt_polarity.csv (seed 0), written to
a temporary CSV, and each size runs in its own process, so peak memory (max
RSS) belongs to that size alone.  The model is textclf's pipeline with
``arch=lstm`` (Embedding 128 → LSTM 64), one epoch, no validation split
beyond 1% of the rows.  Prints a table and the 100k → 1M ratios, and plots
them.
"""

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_sample(rows: int, path: Path) -> None:
    with open(REPO / "data" / "rt_polarity.csv", newline="", encoding="utf-8") as handle:
        source = list(csv.reader(handle))[1:]
    rng = random.Random(0)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for _ in range(rows):
            writer.writerow(source[rng.randrange(len(source))])


def child(path: str) -> None:
    from textclf import TrainConfig, Tokenizer, load_dataset
    from textclf.training.fit import fit_prepared
    from textclf.training.prepare import prepare_in_memory
    from textclf.training.setup import seed_everything

    config = TrainConfig(arch="lstm", pooling="last", epochs=1, validation_fraction=0.01)
    seed_everything(config.seed)
    started = time.perf_counter()
    data = load_dataset(path)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    Tokenizer(num_words=config.num_words, oov_token=config.oov_token).fit_on_texts(data.texts)
    tokenizer_seconds = time.perf_counter() - started
    tokenizer_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    prepared = prepare_in_memory(config, data)
    started = time.perf_counter()
    fitted = fit_prepared(config, prepared, verbose=0)  # The training loop every run uses.
    epoch_seconds = time.perf_counter() - started
    print("RESULT " + json.dumps({
        "rows": len(data), "load_s": load_seconds, "tokenizer_s": tokenizer_seconds,
        "tokenizer_peak_mb": tokenizer_rss, "epoch_s": epoch_seconds, "max_len": fitted.config.max_len,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    rows = [result["rows"] for result in results]
    figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(10, 4), dpi=100)
    time_axis.loglog(rows, [r["tokenizer_s"] for r in results], "-o", label="fit tokenizer")
    time_axis.loglog(rows, [r["epoch_s"] for r in results], "-s", label="train one epoch (incl. tokenizing)")
    linear = [results[0]["epoch_s"] * n / rows[0] for n in rows]
    time_axis.loglog(rows, linear, ":", color="grey", label="linear from the smallest size")
    time_axis.set_xlabel("rows")
    time_axis.set_ylabel("seconds")
    time_axis.set_title("Time")
    time_axis.grid(alpha=0.3, which="both")
    time_axis.legend()
    memory_axis.semilogx(rows, [r["peak_mb"] for r in results], "-o", label="peak RSS, whole run")
    memory_axis.semilogx(rows, [r["tokenizer_peak_mb"] for r in results], "-s", label="peak RSS after tokenizer fit")
    memory_axis.set_xlabel("rows")
    memory_axis.set_ylabel("MB")
    memory_axis.set_ylim(bottom=0)
    memory_axis.set_title("Peak memory")
    memory_axis.grid(alpha=0.3, which="both")
    memory_axis.legend()
    figure.suptitle("textclf scaling on resampled data/rt_polarity.csv (LSTM 64, 1 epoch)")
    figure.tight_layout()
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--plot", default=str(REPO / "docs" / "scaling.png"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            path = Path(folder) / f"sample_{rows}.csv"
            write_sample(rows, path)
            process = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True)
            lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
            if process.returncode or not lines:
                sys.exit(f"{rows} rows failed:\n{process.stderr[-3000:]}")
            results.append(json.loads(lines[-1][7:]))
            print("done: " + lines[-1][7:], flush=True)  # Partial results survive an interrupted run.
            path.unlink()
    print("| rows | read CSV s | fit tokenizer s | train 1 epoch s (incl. tokenizing) | peak RSS MB |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['load_s']:.2f} | {r['tokenizer_s']:.2f} | {r['epoch_s']:.1f} | {r['peak_mb']:.0f} |")
    by_rows = {r["rows"]: r for r in results}
    if 100_000 in by_rows and 1_000_000 in by_rows:
        small, large = by_rows[100_000], by_rows[1_000_000]
        print(f"100k → 1M: tokenizer time {large['tokenizer_s'] / small['tokenizer_s']:.1f}x, "
              f"epoch time {large['epoch_s'] / small['epoch_s']:.1f}x (target <= 11x), "
              f"peak memory {large['peak_mb'] / small['peak_mb']:.2f}x (target <= 2x)")
    plot(results, args.plot)
    print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
