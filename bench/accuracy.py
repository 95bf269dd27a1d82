"""Held-out accuracy: textclf's defaults against the tuned TF-IDF baseline, 3 splits, learning curves.

Usage (from the repository root, after the README's install command):

    python bench/accuracy.py                              # everything (about an hour on the 2-core machine)
    python bench/accuracy.py --data rt_polarity --sizes all --splits 1
    python bench/accuracy.py --set units=32 --json /tmp/units32.json

Protocol, for each data set and split seed s (0, 1, 2):

1. scikit-learn ``train_test_split(stratify=labels, test_size=0.2, random_state=s)``: the test rows, which
   neither side trains on and textclf does not early-stop on (``textclf.evaluation.baseline.held_out_split``);
2. for each learning-curve size (500, 1,000, 2,000 and all training rows; sizes at or above the data's
   training rows collapse to "all"), a stratified subsample of the training rows (``random_state=s``);
3. textclf: ``train(subsample, config, output=...)`` with ``TrainConfig()`` defaults (it holds out its own
   20% of the subsample for early stopping), then the **export** classifies the test rows, as a user's would;
4. two baselines fitted on all of the subsample: today's TF-IDF (word 1-2-grams, or character 1-3-grams when
   textclf chose a CJK mode), sublinear tf, min_df 2, LogisticRegression C=4; and the strongest linear
   baseline, the features, C and class weighting chosen by 5-fold cross-validated macro-F1 on the subsample
   (``textclf.evaluation.baseline.strongest_search``).  Its scores are cached per data file, size and split in
   ``bench/strongest_cache.json`` (its search takes minutes per split on long texts); ``--baselines-only`` fills
   the cache without training textclf;

Macro-F1 on the test rows; the table gives the mean and standard deviation over the splits.  Nothing is
written to the repository (runs go to a temporary folder).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textclf import TrainConfig, load, load_dataset, train  # noqa: E402
from textclf.evaluation.baseline import held_out_split, run_baseline, run_strongest  # noqa: E402
from textclf.evaluation.metrics import classification_metrics  # noqa: E402
from textclf.training.prepare import check_labels  # noqa: E402
from settings import parse_setting  # noqa: E402  (bench/settings.py)

DATA = ["rt_polarity", "news_source", "convention_party", "chatterbot_topic", "chatterbot_topic_zh"]
CURVE = {"rt_polarity": [500, 1000, 2000, "all"], "news_source": [500, 1000, 2000, "all"],
         "chatterbot_topic": [500, 1000, "all"], "chatterbot_topic_zh": [500, "all"]}
CACHE = REPO / "bench" / "strongest_cache.json"


def _digest(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def strongest(name, size, seed, rows, test, classes):
    """The strongest baseline's scores on ``test`` after its search on ``rows``, from the cache or computed."""
    key = f"{name}:{_digest(REPO / 'data' / f'{name}.csv')}:{size}:{seed}:newton-cg"
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if key not in cache:
        result = run_strongest(rows, test, classes, seed)
        cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}  # Another process may have added some.
        cache[key] = {"macro_f1": result["macro_f1"], "chosen": result["chosen"],
                      "fit_seconds": result["fit_seconds"]}
        CACHE.write_text(json.dumps(dict(sorted(cache.items())), indent=1) + "\n")
    return cache[key]


def subsample(data, size, seed):
    """A stratified ``size`` rows of ``data`` (all of it for "all" or a size at or above its length)."""
    from sklearn.model_selection import train_test_split

    if size == "all" or size >= len(data):
        return data
    rows, _ = train_test_split(list(range(len(data))), train_size=size, random_state=seed, stratify=data.labels)
    return data.subset(sorted(rows))


def split_rows(name, size, seed, config):
    """``(rows, test, classes)``: the subsample textclf and the baselines train on, and the held-out test rows."""
    data = load_dataset(REPO / "data" / f"{name}.csv")
    rest, test = held_out_split(data, 0.2, seed)
    rows = subsample(rest, size, seed)
    return rows, test, check_labels(rows, test, config)


def one_run(name, size, seed, config, folder, baselines_only=False):
    rows, test, classes = split_rows(name, size, seed, config)
    best = strongest(name, size, seed, rows, test, classes)
    result = {"data": name, "size": size, "seed": seed, "train_rows": len(rows), "test_rows": len(test),
              "strongest": best["macro_f1"], "strongest_chosen": best["chosen"]}
    if baselines_only:
        return result
    started = time.perf_counter()
    trained = train(rows, config.replace(seed=seed), output=Path(folder) / f"{name}-{size}-{seed}", verbose=0)
    seconds = time.perf_counter() - started
    predicted = [prediction.label for prediction in load(trained.export_dir).predict(test.texts)]
    cjk = trained.config.split_mode != "word"
    losses = trained.history["val_loss"]
    chosen = json.loads((trained.run_dir / "run.json").read_text()).get("wide")
    return {**result,
            "textclf": classification_metrics(test.labels, predicted, classes)["macro_f1"],
            "baseline": run_baseline(rows, test, classes, cjk, seed)["macro_f1"],
            "textclf_seconds": seconds, "epochs": len(losses), "best_epoch": losses.index(min(losses)) + 1,
            "wide": chosen}


def mean_sd(values):
    values = [value for value in values if value is not None]
    if not values:
        return "—"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def table(results):
    lines = ["| data | training rows | textclf | strongest linear | TF-IDF + LR | textclf − strongest (per split) "
             "| textclf s |", "|---|---|---|---|---|---|---|"]
    groups = {}
    for result in results:
        groups.setdefault((result["data"], result["train_rows"] if result["size"] != "all" else "all"), []).append(result)
    for (name, size), runs in groups.items():
        rows = runs[0]["train_rows"]
        trained = [run for run in runs if "textclf" in run]
        differences = " ".join(f"{run['textclf'] - run['strongest']:+.3f}" for run in trained) or "—"
        seconds = f"{statistics.mean(r['textclf_seconds'] for r in trained):.0f}" if trained else "—"
        lines.append(f"| {name} | {rows:,}{' (all)' if size == 'all' else ''} "
                     f"| {mean_sd(r.get('textclf') for r in runs)} | {mean_sd(r['strongest'] for r in runs)} "
                     f"| {mean_sd(r.get('baseline') for r in runs)} | {differences} | {seconds} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA)
    parser.add_argument("--sizes", nargs="+", default=None,
                        help="learning-curve sizes (numbers or 'all') [500 1000 2000 all; convention_party: all]")
    parser.add_argument("--splits", type=int, default=3, help="split seeds 0..N-1 [3]")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="TrainConfig changes")
    parser.add_argument("--json", metavar="FILE", help="also write every run's numbers to FILE")
    parser.add_argument("--baselines-only", action="store_true",
                        help="only fill the strongest baseline's cache (bench/strongest_cache.json)")
    args = parser.parse_args()
    config = TrainConfig(**dict(map(parse_setting, args.set)))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.data:
            sizes = ([size if size == "all" else int(size) for size in args.sizes] if args.sizes
                     else CURVE.get(name, ["all"]))
            for size in sizes:
                for seed in range(args.splits):
                    results.append(one_run(name, size, seed, config, folder, args.baselines_only))
                    print(json.dumps(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(TrainConfig(), k)}
    print(f"settings: {json.dumps(changed) if changed else 'TrainConfig() defaults'}; macro-F1 on held-out test rows, "
          f"mean ± sd over {args.splits} split(s)")
    print(table(results))


if __name__ == "__main__":
    main()
