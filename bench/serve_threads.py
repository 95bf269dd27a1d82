"""Serving threads: the export through TF Serving's C API session with TensorFlow's default threads and with one
thread per op, one run.

Usage (after the README's main command has exported saved_models/rt_polarity):

    python bench/serve_threads.py                       # saved_models/rt_polarity, data/rt_polarity.csv
    python bench/serve_threads.py --model saved_models/news_source --data news_source --rounds 5

TensorFlow creates a process's CPU thread pools with its first session, so each setting runs in its own process:
``--rounds`` times, alternating which setting goes first, a child process loads the export with
``TF_LoadSessionFromSavedModel`` (``textclf.serve.check.ServingSession``, session options from a ``ConfigProto``)
and times ``TF_SessionRun`` fetching ``scores`` at each batch size (p50 over back-to-back calls).  Prints each
setting's medians over the rounds and the ratio one-thread / default (below 1: one thread per op is faster).
TF Serving's flags for the same settings are ``--tensorflow_intra_op_parallelism`` and
``--tensorflow_inter_op_parallelism``.
"""

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SETTINGS = {"default": {}, "one thread per op": {"intra_op_parallelism_threads": 1}}
CALLS = {1: 300, 32: 100, 1024: 20}  # Timed calls per batch size (after 5 warm-up calls).


def child(export, texts_file, options):
    """Runs in the child process: ``{batch: p50 seconds}`` printed as JSON."""
    import tensorflow as tf

    from textclf.serve.artifacts import resolve_export
    from textclf.serve.check import ServingSession

    config = tf.compat.v1.ConfigProto(**json.loads(options)).SerializeToString()
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    session = ServingSession(resolve_export(export), session_config=config)
    p50 = {}
    for batch, calls in CALLS.items():
        rows = texts[:batch]
        for _ in range(5):
            session.run("serving_default", rows, keys=["scores"])
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            session.run("serving_default", rows, keys=["scores"])
            seconds.append(time.perf_counter() - started)
        p50[batch] = statistics.median(seconds)
    print(json.dumps(p50))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/rt_polarity", help="export base or version folder")
    parser.add_argument("--data", default="rt_polarity", help="data/<NAME>.csv, source of the sentences")
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting, alternating")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    with open(REPO / "data" / f"{args.data}.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    random.Random(0).shuffle(texts)
    texts_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_threads_{os.getpid()}.json"
    texts_file.write_text(json.dumps(texts[:max(CALLS)]), encoding="utf-8")
    results = {name: [] for name in SETTINGS}
    try:
        for round_ in range(args.rounds):
            names = list(SETTINGS) if round_ % 2 == 0 else list(SETTINGS)[::-1]
            for name in names:
                output = subprocess.run(
                    [sys.executable, __file__, "--child", args.model, str(texts_file), json.dumps(SETTINGS[name])],
                    check=True, capture_output=True, text=True).stdout
                results[name].append({int(batch): value for batch, value in json.loads(output.splitlines()[-1]).items()})
    finally:
        texts_file.unlink(missing_ok=True)
    print(f"export {args.model}, sentences from data/{args.data}.csv, {args.rounds} processes per setting, "
          "C API session (TF_SessionRun), scores only; p50 ms, median over the processes")
    print("| setting | " + " | ".join(f"batch {batch}" for batch in CALLS) + " |")
    print("|---|" + "---|" * len(CALLS))
    medians = {name: {batch: statistics.median(run[batch] for run in runs) for batch in CALLS}
               for name, runs in results.items()}
    for name, values in medians.items():
        print(f"| {name} | " + " | ".join(f"{values[batch] * 1e3:.3f}" for batch in CALLS) + " |")
    one, default = medians["one thread per op"], medians["default"]
    print("ratio one thread per op / default (p50 time): "
          + ", ".join(f"batch {batch} {one[batch] / default[batch]:.2f}" for batch in CALLS))


if __name__ == "__main__":
    main()
