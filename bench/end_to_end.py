"""End to end, whole processes: the classic recipe's script against ``textclf train`` → export → ``textclf predict``.

Usage (from the repository root, after the README's install command):

    python bench/end_to_end.py                         # rt_polarity and news_source, 2 epochs, 3 repeats
    python bench/end_to_end.py --data rt_polarity --repeats 1

For each data set: a stratified 80/20 split (``held_out_split``, seed 0) written to two CSV files; then,
``--repeats`` times, alternating which side goes first (a slow spell on the shared machine hits both):

- classic: ``python bench/classic_recipe.py TRAIN TEST OUT --epochs N`` (legacy Keras Tokenizer, pad_sequences,
  Embedding → LSTM → Dense, trains on every training row, saves, predicts the test rows), one process;
- textclf: ``textclf train TRAIN --epochs N --output OUT`` (default settings: it holds out 20% of TRAIN for
  validation, writes the run folder and the SavedModel export), then ``textclf predict OUT --input TEST``, the
  export classifying the test rows, two processes.

Wall time of each process from outside, its CPU time (user + system, from the kernel's accounting of the
finished child), the phases each side reports (the classic script's own timers, textclf's run.json "seconds"),
and macro-F1 on the test rows.  Prints the medians over the repeats and the ratios classic / textclf (above 1:
textclf is faster).  CPU seconds move less than wall seconds when other jobs share the host (they still slow
caches and memory), so their ratio is the one to compare across runs.
"""

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def write(path, data):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(data.texts, data.labels))


def timed(command):
    """``(wall seconds, CPU seconds, stdout)`` of ``command`` run to its end."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def classic(train_csv, test_csv, folder, epochs):
    wall, cpu, out = timed([sys.executable, REPO / "bench" / "classic_recipe.py", train_csv, test_csv, folder,
                            "--epochs", str(epochs)])
    report = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, "phases": report["seconds"], "macro_f1": report["macro_f1"]}


def textclf(train_csv, test, test_csv, folder, epochs):
    from sklearn.metrics import f1_score

    cli = [sys.executable, "-m", "textclf.cli"]
    train_wall, train_cpu, _ = timed([*cli, "train", train_csv, "--epochs", str(epochs), "--output", folder])
    run_dir = next((Path(folder) / "runs").iterdir())
    phases = json.loads((run_dir / "run.json").read_text())["seconds"]
    predict_wall, predict_cpu, out = timed([*cli, "predict", folder, "--input", test_csv])
    predicted = [json.loads(line)["label"] for line in out.splitlines() if line.strip()]
    phases = {**phases, "predict process": predict_wall}
    return {"wall": train_wall + predict_wall, "cpu": train_cpu + predict_cpu, "phases": phases,
            "macro_f1": float(f1_score(test.labels, predicted, average="macro"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["rt_polarity", "news_source"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from textclf import load_dataset
    from textclf.evaluation.baseline import held_out_split

    for name in args.data:
        results = {"classic": [], "textclf": []}
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            rest, test = held_out_split(load_dataset(REPO / "data" / f"{name}.csv"), 0.2, 0)
            write(folder / "train.csv", rest)
            write(folder / "test.csv", test)
            for repeat in range(args.repeats):
                order = ["classic", "textclf"] if repeat % 2 == 0 else ["textclf", "classic"]
                for side in order:
                    out = folder / f"{side}-{repeat}"
                    result = (classic(folder / "train.csv", folder / "test.csv", out, args.epochs) if side == "classic"
                              else textclf(folder / "train.csv", test, folder / "test.csv", out, args.epochs))
                    results[side].append(result)
                    print(json.dumps({"data": name, "side": side, "repeat": repeat, **result}), flush=True)
        print(f"\n{name}: {len(rest):,} training rows, {len(test):,} test rows, {args.epochs} epochs, "
              f"medians of {args.repeats} repeats")
        print("| side | phase | seconds |")
        print("|---|---|---|")
        for side, runs in results.items():
            for phase in runs[0]["phases"]:
                print(f"| {side} | {phase} | {statistics.median(run['phases'][phase] for run in runs):.1f} |")
            print(f"| {side} | **whole processes (wall)** | {statistics.median(run['wall'] for run in runs):.1f} |")
            print(f"| {side} | whole processes (CPU) | {statistics.median(run['cpu'] for run in runs):.1f} |")
        wall = {side: statistics.median(run["wall"] for run in runs) for side, runs in results.items()}
        cpu = {side: statistics.median(run["cpu"] for run in runs) for side, runs in results.items()}
        epochs = {"classic": statistics.median(run["phases"]["epochs"] for run in results["classic"]),
                  "textclf": statistics.median(run["phases"]["epochs"] for run in results["textclf"])}
        f1 = {side: statistics.median(run["macro_f1"] for run in runs) for side, runs in results.items()}
        print(f"classic / textclf: whole processes {wall['classic'] / wall['textclf']:.2f}x (CPU seconds "
              f"{cpu['classic'] / cpu['textclf']:.2f}x), epochs "
              f"{epochs['classic'] / epochs['textclf']:.2f}x; test macro-F1 classic {f1['classic']:.4f}, "
              f"textclf {f1['textclf']:.4f}")


if __name__ == "__main__":
    main()
