"""The wide branch's search: its plan, cost units and seconds, per data set (calibrates linear_choice's budgets).

Usage (from the repository root, after the README's install command):

    python bench/wide_search.py                                  # every data set in data/
    python bench/wide_search.py --data rt_polarity chatterbot_topic --cross-validate

For each data set: the rows ``textclf train`` gives the branch (the file less a random 20%, as validation rows
are 20% of them: training rows first, then validation rows), the search ``textclf.training.linear_choice.plan``
picks, its cost in units (fits x rows x distinct n-grams per row x outputs) and the seconds of
``linear_choice.search`` (its fits in threads, as in training), with seconds per million units.
``--cross-validate`` also times 5-fold cross-validation of the full grid on every row whatever the plan (the cost
the plan avoids).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textclf import load_dataset  # noqa: E402
from textclf.training import linear_choice  # noqa: E402
from textclf.training.fit_threads import one_blas_thread  # noqa: E402
from textclf.training.wide import ANALYZERS, NgramCounts  # noqa: E402



def rows_of(name, seed=0):
    """``(texts, targets, train_count)``: the file's rows in a random order, the first 80% as training rows."""
    data = load_dataset(REPO / "data" / f"{name}.csv")
    classes = sorted(set(data.labels))
    order = np.random.default_rng(seed).permutation(len(data.texts))
    texts = [data.texts[row] for row in order]
    targets = np.array([classes.index(data.labels[row]) for row in order])
    return texts, targets, int(len(texts) * 0.8)


def timed_search(counts, per_row, targets, chosen, train_count, seed=0):
    """``(seconds, cost units, best choice)`` of the search ``chosen`` plans."""
    picked = chosen.rows
    matrices = {analyzer: counts(analyzer, picked)[0] for analyzer in ANALYZERS}
    splits = linear_choice.splits_of(chosen, targets, train_count)
    started = time.perf_counter()
    with one_blas_thread():  # As textclf.training.wide.fit_linear runs it.
        best, _, _ = linear_choice.search(matrices, targets[picked], splits, seed, chosen.grid)
    fitted = sum(len(fit_rows) for fit_rows, _ in splits)
    return time.perf_counter() - started, fitted * linear_choice.grid_size(chosen.grid) * per_row, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted(path.stem for path in (REPO / "data").glob("*.csv"))
    parser.add_argument("--data", nargs="+", default=names, choices=names)
    parser.add_argument("--cross-validate", action="store_true", help="also time 5-fold CV on every row")
    args = parser.parse_args()
    print("| data | rows | units a row | plan | fitted, scored rows | cost (M units) | search s | s per M units "
          "| choice |\n|---|---|---|---|---|---|---|---|---|")
    for name in args.data:
        texts, targets, train_count = rows_of(name)
        outputs = 1 if targets.max() == 1 else int(targets.max()) + 1
        counts = NgramCounts(texts)
        per_row = counts.cost_per_row(np.arange(len(texts)), outputs, seed=0)
        plans = [linear_choice.plan(targets, train_count, per_row, seed=0)]
        if args.cross_validate and (plans[0].grid != "full" or len(plans[0].rows) < len(texts)):
            plans.append(linear_choice.Plan("cross-validation", np.arange(len(texts)), 5, "forced"))
        for chosen in plans:
            if chosen.method == "fixed":
                print(f"| {name} | {len(texts):,} | {per_row:,.0f} | fixed | | | | | |")
                continue
            seconds, cost, best = timed_search(counts, per_row, targets, chosen, train_count)
            splits = linear_choice.splits_of(chosen, targets, train_count)
            print(f"| {name} | {len(texts):,} | {per_row:,.0f} | {chosen.method}, {chosen.grid} | "
                  f"{len(splits[0][0]):,}, {len(splits[0][1]):,} x {len(splits)} | {cost / 1e6:,.0f} | "
                  f"{seconds:.1f} | {seconds / (cost / 1e6):.3f} | {best.describe()} |", flush=True)


if __name__ == "__main__":
    main()
