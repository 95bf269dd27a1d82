"""Serving speed: the raw-text export against Keras ``model.predict`` and the TF-IDF pipeline, one run.

Usage (after the README's main command has exported saved_models/rt_polarity):

    python bench/serve_speed.py                        # saved_models/rt_polarity, data/rt_polarity.csv
    python bench/serve_speed.py --model saved_models/news_source --data news_source

Measures, on sentences drawn from the data file, every path interleaved in short turns of back-to-back calls
(so a busy machine slows them alike; see ``interleaved``):
- the export, loaded with ``tf.saved_model.load`` (TensorFlow only), one sentence per call: p50/p99 latency;
- the export at batch 32 and 1024: sentences/s;
- the same run exported with the Keras graph of the model instead of ``textclf/serve/fast_lstm.py``'s forward pass
  (the export without the fast LSTM path; LSTM models only), at the same batch sizes;
- the run's Keras model through the classic client path (Python tokenizer, ``pad_sequences``,
  ``model.predict``) on one sentence: p50/p99 latency;
- the TF-IDF + logistic-regression pipeline's ``predict`` at batch 1 and 1024;
- the export loaded as TF Serving loads it (``TF_LoadSessionFromSavedModel``) and run with ``TF_SessionRun``
  through ``textclf.serve.check`` (ctypes: building the string tensor in Python is part of each call's time,
  so TF Serving's own C++ request path pays less), one sentence and 1,024 per call.
Prints a table, the three serving targets with their status, and the same-run ratios.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def interleaved(paths, warmup=10):
    """Times ``{name: (function, repeats, block)}`` round-robin; sorted seconds per path.

    Each turn runs ``block`` calls of one path back to back and keeps all but
    the first: a call right after another path's large batch runs on cold
    caches (measured here: a single sentence took 2.5x as long right after a
    batch of 1,024 as in a stream of single sentences, for the export and the
    TF-IDF pipeline alike), which is not what a stream of requests sees.
    """
    for function, _, _ in paths.values():
        for _ in range(warmup):
            function()
    seconds = {name: [] for name in paths}
    while any(len(seconds[name]) < repeats for name, (_, repeats, _) in paths.items()):
        for name, (function, repeats, block) in paths.items():
            for call in range(block + 1 if len(seconds[name]) < repeats else 0):
                started = time.perf_counter()
                function()
                if call:
                    seconds[name].append(time.perf_counter() - started)
    return {name: sorted(values) for name, values in seconds.items()}


def percentile(sorted_seconds, share):
    return sorted_seconds[min(len(sorted_seconds) - 1, int(share * len(sorted_seconds)))]


def keras_graph_export(run, folder):
    """The run exported with the Keras graph of the model (``serving_module(fast=False)``), loaded back."""
    import tensorflow as tf

    from textclf.serve.export import serving_module

    module = serving_module(run, fast=False)
    tf.saved_model.save(module, folder, signatures={"serving_default": module.classify, "tokenize": module.tokenize})
    return tf.saved_model.load(folder).signatures["serving_default"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/rt_polarity", help="export base or version folder")
    parser.add_argument("--data", default="rt_polarity", help="data/<NAME>.csv, source of the sentences")
    parser.add_argument("--repeats", type=int, default=300, help="single-sentence calls per path")
    args = parser.parse_args()

    import tensorflow as tf

    from textclf import load_dataset
    from textclf.serve.artifacts import resolve_export
    from textclf.evaluation.baseline import tfidf_pipeline
    from textclf.serve.predict import RunClassifier
    from textclf.serve.fast_lstm import supports
    from textclf.model.factory import wide_of
    from textclf.serve.check import ServingSession

    version = resolve_export(args.model)
    metadata = json.loads((version / "textclf.json").read_text())
    data = load_dataset(REPO / "data" / f"{args.data}.csv")
    rng = random.Random(0)
    sentences = [data.texts[rng.randrange(len(data))] for _ in range(1024)]
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    session = ServingSession(version)
    classic = RunClassifier(metadata["run"])
    model, config = classic.run.model, classic.run.config
    baseline = tfidf_pipeline().fit(data.texts, data.labels)
    temporary = tempfile.TemporaryDirectory()
    before = keras_graph_export(classic.run, temporary.name) if supports(config) else None

    def classic_predict(texts):
        """Python tokenizer, pad_sequences, model.predict (the raw text too for a model with a wide branch)."""
        ids = classic.tokenize(texts)
        return model.predict(ids if wide_of(model) is None else [ids, tf.constant(texts)], verbose=0)

    single = iter(range(10**9))
    one = lambda: [sentences[next(single) % 1024]]  # noqa: E731 - a different sentence each call
    batches = {size: tf.constant(sentences[:size]) for size in (32, 1024)}
    few = max(10, args.repeats // 20)
    # name: (function, calls timed, calls per turn, sentences per call)
    paths = {
        "export, 1 sentence per call": (lambda: signature(text=tf.constant(one())), args.repeats, 30, 1),
        "export, batch 32": (lambda: signature(text=batches[32]), args.repeats // 3, 10, 32),
        "export, batch 1024": (lambda: signature(text=batches[1024]), few, 3, 1024),
        "export via the C API (TF_SessionRun), 1 sentence per call": (
            lambda: session.run("serving_default", one()), args.repeats, 30, 1),
        "export via the C API (TF_SessionRun), batch 1024": (
            lambda: session.run("serving_default", sentences), few, 3, 1024),
        # What a TF Serving client gets with output_filter=["scores"] (and textclf predict fetches): no strings
        # come back through ctypes.
        "export via the C API (TF_SessionRun), batch 1024, scores only": (
            lambda: session.run("serving_default", sentences, keys=["scores"]), few, 3, 1024),
    }
    if before is not None:
        paths.update({
            "export with the Keras graph, 1 sentence per call": (
                lambda: before(text=tf.constant(one())), args.repeats, 30, 1),
            "export with the Keras graph, batch 32": (lambda: before(text=batches[32]), args.repeats // 3, 10, 32),
            "export with the Keras graph, batch 1024": (lambda: before(text=batches[1024]), few, 3, 1024),
        })
    paths.update({
        "Keras model.predict, 1 sentence per call": (
            lambda: classic_predict(one()), max(30, args.repeats // 5), 5, 1),
        "TF-IDF + LogReg predict, 1 sentence": (lambda: baseline.predict(one()), args.repeats, 30, 1),
        "TF-IDF + LogReg predict, batch 1024": (lambda: baseline.predict(sentences), few, 3, 1024),
    })
    load_before = os.getloadavg()[0]
    seconds = interleaved({name: (function, repeats, block) for name, (function, repeats, block, _) in paths.items()})
    load_after = os.getloadavg()[0]

    print(f"export {version} ({config.arch}, units {config.units}, pooling {config.pooling}, max_len {config.max_len}); "
          f"sentences from data/{args.data}.csv (mean {statistics.mean(len(s.split()) for s in sentences):.0f} words); "
          f"load average {load_before:.2f} before, {load_after:.2f} after")
    print("| path | p50 ms | p99 ms | sentences/s |")
    print("|---|---|---|---|")
    p50 = {}
    for name, (_, _, _, batch) in paths.items():
        p50[name] = percentile(seconds[name], 0.5)
        print(f"| {name} | {p50[name] * 1e3:.3f} | {percentile(seconds[name], 0.99) * 1e3:.3f} | "
              f"{batch / p50[name]:,.0f} |")

    latency = p50["export, 1 sentence per call"]
    speedup = p50["Keras model.predict, 1 sentence per call"] / latency
    throughput = 1024 / p50["export, batch 1024"]
    met = {True: "met", False: "NOT met"}
    print(f"target 1, single-sentence p50 <= 1 ms: {latency * 1e3:.3f} ms, {met[latency <= 1e-3]}")
    print(f"target 2, >= 50x faster than model.predict per single call: {speedup:.0f}x, {met[speedup >= 50]}")
    print(f"target 3, batch-1024 throughput >= 25,000 sentences/s: {throughput:,.0f}/s, {met[throughput >= 25000]}")
    if before is not None:
        print("same run, export / export with the Keras graph (p50 time, lower is faster): " + ", ".join(
            f"{label} {p50[f'export, {label}'] / p50[f'export with the Keras graph, {label}']:.2f}"
            for label in ("1 sentence per call", "batch 32", "batch 1024")))
    c_api = p50["export via the C API (TF_SessionRun), 1 sentence per call"]
    print(f"single-sentence p50 through the C API session <= 0.5 ms: {c_api * 1e3:.3f} ms, {met[c_api <= 5e-4]}")
    print(f"same run, C API session / tf.saved_model.load signature (p50 time): 1 sentence {c_api / latency:.2f}, "
          f"batch 1024 {p50['export via the C API (TF_SessionRun), batch 1024'] / p50['export, batch 1024']:.2f}")
    tfidf = 1024 / p50["TF-IDF + LogReg predict, batch 1024"]
    for name in ("export, batch 1024", "export via the C API (TF_SessionRun), batch 1024, scores only"):
        ratio = (1024 / p50[name]) / tfidf
        print(f"target: batch-1024 throughput >= 1.5x the TF-IDF pipeline's predict ({name}): {ratio:.2f}x, "
              f"{met[ratio >= 1.5]}")
    print(f"target: single-sentence p50 through Python <= 0.7 ms: {latency * 1e3:.3f} ms, {met[latency <= 7e-4]}")
    print(f"same run, export / TF-IDF + LogReg (p50 time): 1 sentence "
          f"{latency / p50['TF-IDF + LogReg predict, 1 sentence']:.2f}, batch 1024 "
          f"{p50['export, batch 1024'] / p50['TF-IDF + LogReg predict, batch 1024']:.2f}")


if __name__ == "__main__":
    main()
