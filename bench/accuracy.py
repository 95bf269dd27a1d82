"""Default textclf settings against the TF-IDF baselines, same stratified 80/20 split, both data sets.

Usage (from the repository root, after the README's install command):

    python bench/accuracy.py                 # both data sets, default TrainConfig
    python bench/accuracy.py --data rt_polarity --set pooling=last

Prints one Markdown table (the one docs/RESULTS.md quotes).  Runs go to a
temporary folder; nothing is exported.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textclf import TrainConfig, train  # noqa: E402
from textclf.evaluate.baseline import BASELINES, run_baseline  # noqa: E402
from textclf.train.prepare import prepare_in_memory  # noqa: E402
from settings import parse_setting  # noqa: E402  (bench/settings.py)



def epochs_of(history):
    """``"epochs run (best)"``: early stopping restores the epoch of the lowest validation loss."""
    losses = history["val_loss"]
    return f"{len(losses)} ({losses.index(min(losses)) + 1})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["rt_polarity", "news_source"])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="TrainConfig changes")
    args = parser.parse_args()
    config = TrainConfig(**dict(map(parse_setting, args.set)))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.data:
            split = prepare_in_memory(config, REPO / "data" / f"{name}.csv")
            started = time.perf_counter()
            result = train(split.train, config, valid=split.valid, run_dir=Path(folder) / name, verbose=0)
            seconds = time.perf_counter() - started
            baselines = {label: run_baseline(split.train, split.valid, split.classes, config, label)
                         for label in BASELINES}
            rows.append((name, result, seconds, baselines))
    labels = list(BASELINES)
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(TrainConfig(), k)}
    print(f"settings: {json.dumps(changed) if changed else 'TrainConfig() defaults'}")
    print("| data | textclf macro-F1 | textclf accuracy | " + " | ".join(f"{label} macro-F1" for label in labels)
          + " | textclf − baseline | textclf time | epochs run (best) |")
    print("|---" * (6 + len(labels)) + "|")
    for name, result, seconds, baselines in rows:
        first = baselines[labels[0]]["macro_f1"]
        print(f"| {name} | {result.metrics['macro_f1']:.4f} | {result.metrics['accuracy']:.4f} | "
              + " | ".join(f"{baselines[label]['macro_f1']:.4f}" for label in labels)
              + f" | {result.metrics['macro_f1'] - first:+.4f} | {seconds:.0f} s | {epochs_of(result.history)} |")


if __name__ == "__main__":
    main()
