"""Streaming memory: peak RSS of the counting pass and of training from the file, on a small and a multi-GB CSV.

Usage (from the repository root, after the README's install command):

    python bench/streaming_memory.py                          # 100 MB and 2 GB files under /tmp
    python bench/streaming_memory.py --large-mb 3000 --workdir /scratch --max-steps 300

Both files are written to ``--workdir`` (a temporary folder under /tmp by
default, deleted at the end unless ``--keep``), never into the repository:
rows of data/rt_polarity.csv drawn with replacement (seed 0), each with its
words shuffled, so the texts differ while the vocabulary stays the real one.
Each measurement runs in its own process, and its peak memory is that
process's ``ru_maxrss`` (read by the parent with ``os.wait4``).  In each
process: ``streaming="on"`` settings (``textclf train``'s default model),
the counting pass (split, tokenizer, labels, length histogram), then
``--max-steps`` training steps of the training loop (``textclf.training.loop``)
read from the file through the streaming tf.data pipeline (shuffle buffer,
length buckets) and validation on ``--valid-batches`` × 1,024 rows (in
batches of the run's ``batch_size``).  The in-memory path on the small file is
measured the same way for comparison.  Prints a table and the ratios.
"""

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_sample(path: Path, target_bytes: int, seed: int = 0) -> int:
    """Writes rows of rt_polarity with shuffled words until the file holds ``target_bytes``; returns the rows."""
    with open(REPO / "data" / "rt_polarity.csv", newline="", encoding="utf-8") as handle:
        source = [(text.split(), label) for text, label in list(csv.reader(handle))[1:]]
    rng = random.Random(seed)
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        while handle.tell() < target_bytes:
            block = []
            for _ in range(10_000):
                words, label = source[rng.randrange(len(source))]
                words = words[:]
                rng.shuffle(words)
                block.append((" ".join(words), label))
            writer.writerows(block)
            rows += len(block)
    return rows


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FirstBatches:
    """The first ``steps`` batches of ``rows``: a :class:`textclf.training.rows.Rows` that bounds the bench's time."""

    def __init__(self, rows, steps: int, batch_size: int):
        self.rows, self.steps = rows, steps
        self.label_counts, self.fingerprint = rows.label_counts, rows.fingerprint
        self.count = min(len(rows), steps * batch_size)

    def __len__(self):
        return self.count

    def batches(self, batch_size, *args, **kwargs):
        return self.rows.batches(batch_size, *args, **kwargs).take(self.steps)


def child(path: str, mode: str, max_steps: int, valid_limit: int) -> None:
    from textclf import TrainConfig
    from textclf.training.loop import run_loop
    from textclf.training.prepare import prepare
    from textclf.training.setup import seed_everything

    config = TrainConfig(streaming="on" if mode == "streaming" else "off", split_mode="word", epochs=1)
    seed_everything(config.seed)
    result = {"mode": mode, "file_mb": os.path.getsize(path) / 2**20}
    started = time.perf_counter()
    # What `textclf train` does before its first epoch: read (in memory) or count (streamed), split, fit the
    # tokenizer, encode the rows.
    prepared = prepare(config, path)
    train, valid = prepared.parts(prepared.tokenizer, prepared.config)
    config, tokenizer = prepared.config, prepared.tokenizer
    result.update(rows=prepared.train_count + prepared.valid_count, count_s=time.perf_counter() - started,
                  count_peak_mb=peak_mb(), max_len=config.max_len, vocabulary=len(tokenizer.word_index))
    print("COUNTED " + json.dumps(result), flush=True)

    # The training loop every run uses, on the first --max-steps batches and --valid-batches validation batches.
    started = time.perf_counter()
    _, _, seconds = run_loop(config, tokenizer, prepared.classes, FirstBatches(train, max_steps, config.batch_size),
                             FirstBatches(valid, valid_limit * 4, config.batch_size), verbose=0)
    result.update(train_steps=max_steps, train_s=seconds["training"][0], valid_s=seconds["validation"][0],
                  loop_s=time.perf_counter() - started, peak_mb=peak_mb())
    print("RESULT " + json.dumps(result), flush=True)


def measure(path: Path, mode: str, args) -> dict:
    command = [sys.executable, __file__, "--child", str(path), "--mode", mode, "--max-steps", str(args.max_steps),
               "--valid-batches", str(args.valid_batches)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if status or not lines:
        sys.exit(f"{mode} on {path} failed (status {status}):\n{output[-3000:]}")
    result = json.loads(lines[-1][7:])
    result["child_maxrss_mb"] = usage.ru_maxrss / 1024
    print("done: " + json.dumps(result), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=100)
    parser.add_argument("--large-mb", type=float, default=2048)
    parser.add_argument("--max-steps", type=int, default=200, help="training steps per measurement [200]")
    parser.add_argument("--valid-batches", type=int, default=20, help="validation rows, in 1,024s [20]")
    parser.add_argument("--workdir", help="folder for the generated files [a temporary folder under /tmp]")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="streaming", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.mode, args.max_steps, args.valid_batches)
        return
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="textclf-streaming-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if REPO in workdir.resolve().parents or workdir.resolve() == REPO:
        sys.exit("--workdir must be outside the repository")
    try:
        files = {}
        for name, megabytes in (("small", args.small_mb), ("large", args.large_mb)):
            path = workdir / f"{name}.csv"
            if not path.exists() or path.stat().st_size < megabytes * 2**20:
                started = time.perf_counter()
                rows = write_sample(path, int(megabytes * 2**20), seed=0 if name == "small" else 1)
                print(f"wrote {path}: {rows:,} rows, {path.stat().st_size / 2**20:,.0f} MB "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            files[name] = path
        results = [measure(files["small"], "in-memory", args), measure(files["small"], "streaming", args),
                   measure(files["large"], "streaming", args)]
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("| path | file MB | rows | counting pass s | peak RSS after counting MB | train steps | train s "
          "| peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['file_mb']:,.0f} | {r['rows']:,} | {r['count_s']:.0f} | {r['count_peak_mb']:,.0f} "
              f"| {r['train_steps']} | {r['train_s']:.0f} | {r['child_maxrss_mb']:,.0f} |")
    memory, small, large = results
    print(f"streaming, large / small file: size {large['file_mb'] / small['file_mb']:.1f}x, rows "
          f"{large['rows'] / small['rows']:.1f}x, peak RSS {large['child_maxrss_mb'] / small['child_maxrss_mb']:.2f}x, "
          f"counting time {large['count_s'] / small['count_s']:.1f}x")
    print(f"small file, streaming / in memory: peak RSS {small['child_maxrss_mb'] / memory['child_maxrss_mb']:.2f}x")


if __name__ == "__main__":
    main()
