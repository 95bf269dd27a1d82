"""Time to quality, whole processes: the classic recipe trained with care against ``textclf train``'s defaults.

Usage (from the repository root, after the README's install command):

    python bench/time_to_quality.py                        # 4 data sets x 3 splits (long: hours on 2 cores)
    python bench/time_to_quality.py --data convention_party chatterbot_topic --splits 1 --json /tmp/ttq.json

For each data set and split seed s (0 .. --splits - 1): bench/accuracy.py's held-out split
(``held_out_split(data, 0.2, s)``, stratified), written to TRAIN.csv and TEST.csv; then, alternating which side
goes first (reference first on even seeds), each side as whole processes:

- reference, the classic recipe as a careful tutorial user runs it (``--child reference``, legacy Keras from
  ``tf_keras``, no textclf import): Tokenizer(num_words=20000), ``pad_sequences`` to the 95th percentile of the
  training lengths, Embedding(20001, 128) → LSTM(64) → Dense, Adam, batch 32, at most 15 epochs with
  ``validation_split=0.1`` (the last 10% of TRAIN, which keeps the data file's shuffled order) and
  EarlyStopping(val_loss, patience 2, best weights restored), seeded with s; then it saves the model and
  tokenizer and predicts TEST, in the same process;
- textclf: ``textclf.train(TRAIN, TrainConfig(seed=s), output=OUT)``, what ``textclf train TRAIN --output OUT
  --seed s`` runs (every other setting at its default, wide branch included; it holds out its own 20% of TRAIN
  for early stopping), then ``textclf predict OUT --input TEST``, the export classifying TEST.  The training
  process is ``--child textclf``, with ``train``'s ``on_epoch_end`` hook copying the recurrent model's weights
  and noting the time.
  Once ``main`` returns (export written), the child scores every epoch's weights on TEST; that work and the
  copies are timed in the child and taken off the process's wall and CPU seconds.

Wall seconds from outside (start to ``os.wait4``); CPU seconds are the child's user + system time from
``os.wait4``'s rusage.  textclf's "matched at" is the wall time since its training process started at which its
model first scored the reference's held-out macro-F1 or better: an epoch end of the recurrent part (scored by
the bench as above), else the end of the training process when only the export (with the wide branch) matches.
The floor: the TF-IDF + LR pipeline (``textclf.evaluation.baseline.run_baseline``) fitted on TRAIN in this
process, its fit seconds and held-out macro-F1.  Macro-F1 is ``classification_metrics`` on TEST for every side.
Prints a JSON line and a table row per run, then the means over splits; ``--json FILE`` writes every run.
"""

import argparse
import csv
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = ["rt_polarity", "news_source", "chatterbot_topic", "convention_party"]
PREFIX = "TIME_TO_QUALITY "  # The line a child reports its result on.
STARTED = "TIME_TO_QUALITY_STARTED"  # time.monotonic() when the parent started the child (system-wide on Linux).


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def reference_child(train_csv, test_csv, out, seed):
    """The classic recipe with early stopping; the test rows' predicted labels, epochs run and best epoch."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tf_keras as keras

    texts, labels = read(train_csv)
    test_texts, _ = read(test_csv)
    tokenizer = keras.preprocessing.text.Tokenizer(num_words=20000)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    max_len = int(math.ceil(np.percentile([len(sequence) for sequence in sequences], 95)))
    x_train = keras.preprocessing.sequence.pad_sequences(sequences, maxlen=max_len)
    classes = sorted(set(labels))
    y_train = np.array([classes.index(label) for label in labels])
    binary = len(classes) == 2
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.Embedding(20001, 128, input_length=max_len),
        keras.layers.LSTM(64),
        keras.layers.Dense(1, activation="sigmoid") if binary else keras.layers.Dense(len(classes),
                                                                                       activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy", metrics=["accuracy"])
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x_train, y_train, batch_size=32, epochs=15, validation_split=0.1, callbacks=[stopping],
                        verbose=0)
    Path(out).mkdir(parents=True, exist_ok=True)
    model.save(Path(out) / "model.keras")
    (Path(out) / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
    x_test = keras.preprocessing.sequence.pad_sequences(tokenizer.texts_to_sequences(test_texts), maxlen=max_len)
    probabilities = model.predict(x_test, batch_size=256, verbose=0)
    predicted = (probabilities[:, 0] > 0.5).astype(int) if binary else probabilities.argmax(axis=1)
    losses = history.history["val_loss"]
    return {"epochs": len(losses), "best_epoch": losses.index(min(losses)) + 1, "max_len": max_len,
            "predicted": [classes[index] for index in predicted]}


def textclf_child(train_csv, test_csv, out, seed):
    """``textclf.train(TRAIN, TrainConfig(seed=SEED), output=OUT)`` (what ``textclf train`` runs) with an epoch-end
    hook that copies the recurrent model's weights, then every epoch's weights scored on the test rows, and the
    bench's own wall and CPU seconds."""
    import numpy as np

    from textclf import TrainConfig, train
    from textclf.model.factory import predict_probabilities
    from textclf.serve.artifacts import load_run
    from textclf.text.sequences import encode

    started, snapshots, spent = float(os.environ[STARTED]), [], {"wall": 0.0, "cpu": 0.0}
    trained = {}

    def on_epoch_end(epoch, model):
        now, cpu = time.monotonic(), time.thread_time()
        trained["model"] = model
        snapshots.append({"at": now - started - spent["wall"],
                          "weights": [np.array(weight.numpy(), copy=True) for weight in model.weights]})
        spent["wall"], spent["cpu"] = spent["wall"] + time.monotonic() - now, spent["cpu"] + time.thread_time() - cpu

    result = train(str(train_csv), TrainConfig(seed=seed), output=str(out), verbose=0,
                   started_at=time.perf_counter() - (time.monotonic() - started), on_epoch_end=on_epoch_end)
    begun, before = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    run = load_run(result.run_dir)
    config, model, classes = run.config, trained["model"], run.classes
    ids = encode(run.tokenizer, read(test_csv)[0], config.max_len, config.padding, config.truncating, trim=True)
    epochs = []
    for snapshot in snapshots:
        for variable, value in zip(model.weights, snapshot.pop("weights")):
            variable.assign(value)
        predicted = predict_probabilities(model, ids).argmax(axis=1)
        epochs.append({**snapshot, "predicted": [classes[index] for index in predicted]})
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    phases = json.loads((Path(result.run_dir) / "run.json").read_text())["seconds"]  # textclf's own timers.
    return {"epochs": epochs, "bench_wall": spent["wall"] + time.monotonic() - begun, "bench_cpu": spent["cpu"] + cpu,
            "phases": phases}


def timed(command, folder, name):
    """``(wall s, CPU s, stdout)`` of ``command`` as a whole process, CPU from ``os.wait4``'s rusage."""
    with open(folder / f"{name}.out", "w") as out, open(folder / f"{name}.err", "w") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, STARTED: repr(started)})
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed ({process.returncode}):\n"
                 f"{(folder / f'{name}.err').read_text()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, (folder / f"{name}.out").read_text()


def child_result(stdout):
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith(PREFIX))[len(PREFIX):])


def run_reference(folder, seed, score):
    wall, cpu, out = timed([sys.executable, __file__, "--child", "reference", folder / "train.csv",
                            folder / "test.csv", folder / "reference", str(seed)], folder, "reference")
    result = child_result(out)
    return {"wall": wall, "cpu": cpu, "epochs": result["epochs"], "best_epoch": result["best_epoch"],
            "max_len": result["max_len"], "macro_f1": score(result.pop("predicted"))}


def run_textclf(folder, seed, score):
    """Training process (bench work taken off) + ``textclf predict`` process; each epoch's held-out macro-F1."""
    wall, cpu, out = timed([sys.executable, __file__, "--child", "textclf", folder / "train.csv",
                            folder / "test.csv", folder / "textclf", str(seed)], folder, "textclf")
    result = child_result(out)
    train_wall, train_cpu = wall - result["bench_wall"], cpu - result["bench_cpu"]
    predict_wall, predict_cpu, out = timed([sys.executable, "-m", "textclf.cli", "predict", folder / "textclf",
                                            "--input", folder / "test.csv"], folder, "predict")
    predicted = [json.loads(line)["label"] for line in out.splitlines() if line.startswith("{")]
    return {"wall": train_wall + predict_wall, "cpu": train_cpu + predict_cpu, "train_wall": train_wall,
            "predict_wall": predict_wall, "bench_wall": result["bench_wall"], "bench_cpu": result["bench_cpu"],
            "phases": result["phases"], "epochs": len(result["epochs"]),
            "macro_f1": score(predicted),
            "epoch_at": [epoch["at"] for epoch in result["epochs"]],
            "epoch_f1": [score(epoch["predicted"]) for epoch in result["epochs"]]}


def matched_at(ours, target):
    """``(seconds, where)``: when textclf first scored ``target`` or better, or ``(None, "never")``."""
    for number, (at, f1) in enumerate(zip(ours["epoch_at"], ours["epoch_f1"]), start=1):
        if f1 >= target:
            return at, f"epoch {number}"
    return (ours["train_wall"], "export") if ours["macro_f1"] >= target else (None, "never")


def one_split(name, seed, folder):
    from textclf import TrainConfig, load_dataset
    from textclf.evaluation.baseline import held_out_split, run_baseline
    from textclf.evaluation.metrics import classification_metrics
    from textclf.training.prepare import check_labels

    rest, test = held_out_split(load_dataset(REPO / "data" / f"{name}.csv"), 0.2, seed)
    classes = check_labels(rest, test, TrainConfig())
    folder.mkdir(parents=True)
    for part, data in (("train", rest), ("test", test)):
        with open(folder / f"{part}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *zip(data.texts, data.labels)])

    def score(predicted):
        return classification_metrics(test.labels, predicted, classes)["macro_f1"]

    sides = {}
    for side in ("reference", "textclf") if seed % 2 == 0 else ("textclf", "reference"):
        sides[side] = (run_reference if side == "reference" else run_textclf)(folder, seed, score)
    baseline = run_baseline(rest, test, classes, False, seed)
    at, where = matched_at(sides["textclf"], sides["reference"]["macro_f1"])
    return {"data": name, "seed": seed, "train_rows": len(rest), "test_rows": len(test), **sides,
            "wall_ratio": sides["textclf"]["wall"] / sides["reference"]["wall"], "matched_at": at,
            "matched_where": where, "tfidf": {"fit_seconds": baseline["fit_seconds"], "macro_f1": baseline["macro_f1"]}}


def split_table(results):
    lines = ["| data | split | reference wall s · CPU s · epochs · macro-F1 "
             "| textclf wall s · CPU s · epochs · macro-F1 | wall textclf / ref | textclf matched ref at "
             "| TF-IDF + LR fit s · macro-F1 |", "|---|---|---|---|---|---|---|"]
    for run in results:
        ref, ours = run["reference"], run["textclf"]
        matched = f"{run['matched_at']:.1f} s ({run['matched_where']})" if run["matched_at"] is not None else "never"
        lines.append(f"| {run['data']} | {run['seed']} | {ref['wall']:.1f} · {ref['cpu']:.1f} · {ref['epochs']} · "
                     f"{ref['macro_f1']:.3f} | {ours['wall']:.1f} · {ours['cpu']:.1f} · {ours['epochs']} · "
                     f"{ours['macro_f1']:.3f} | {run['wall_ratio']:.2f}x | {matched} "
                     f"| {run['tfidf']['fit_seconds']:.1f} · {run['tfidf']['macro_f1']:.3f} |")
    return "\n".join(lines)


def mean_table(results):
    lines = ["| data | splits | reference wall s · CPU s · macro-F1 | textclf wall s · CPU s · macro-F1 | wall ratio "
             "textclf / ref | CPU ratio | textclf matched ref (runs) at s | matched / ref wall "
             "| TF-IDF + LR fit s · macro-F1 |", "|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for run in results:
        groups.setdefault(run["data"], []).append(run)
    for name, runs in groups.items():
        ref, ours, floor = ({key: statistics.mean(run[side][key] for run in runs)
                             for key, value in runs[0][side].items() if isinstance(value, (int, float))}
                            for side in ("reference", "textclf", "tfidf"))
        matched = [run["matched_at"] for run in runs if run["matched_at"] is not None]
        at = f"{statistics.mean(matched):.1f} | {statistics.mean(matched) / ref['wall']:.2f}x" if matched else "— | —"
        lines.append(f"| {name} | {len(runs)} | {ref['wall']:.1f} · {ref['cpu']:.1f} · {ref['macro_f1']:.3f} "
                     f"| {ours['wall']:.1f} · {ours['cpu']:.1f} · {ours['macro_f1']:.3f} "
                     f"| {ours['wall'] / ref['wall']:.2f}x | {ours['cpu'] / ref['cpu']:.2f}x "
                     f"| {len(matched)}/{len(runs)}: {at} "
                     f"| {floor['fit_seconds']:.1f} · {floor['macro_f1']:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA)
    parser.add_argument("--splits", type=int, default=3, help="split seeds 0..N-1 [3]")
    parser.add_argument("--json", metavar="FILE", help="also write every run's numbers to FILE")
    parser.add_argument("--child", nargs=5, metavar=("SIDE", "TRAIN", "TEST", "OUT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, train_csv, test_csv, out, seed = args.child
        sys.path.insert(0, str(REPO))
        result = (reference_child if side == "reference" else textclf_child)(train_csv, test_csv, out, int(seed))
        print(PREFIX + json.dumps(result), flush=True)
        return
    sys.path.insert(0, str(REPO))
    results = []
    with tempfile.TemporaryDirectory(prefix="time-to-quality-") as folder:
        for name in args.data:
            for seed in range(args.splits):
                results.append(one_split(name, seed, Path(folder) / f"{name}-{seed}"))
                print(json.dumps(results[-1]), flush=True)
                print(split_table(results[-1:]).splitlines()[-1], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nheld-out macro-F1 (20% of each data set, split seeds 0..{args.splits - 1}); whole processes, seconds")
    print(split_table(results))
    print(f"\nmeans over {args.splits} split(s); ratios of the means")
    print(mean_table(results))


if __name__ == "__main__":
    main()
