"""Training throughput of textclf's training loop under one variant: batch size, buckets, dropout.

Usage (from the repository root):

    python bench/train_variants.py default            # batch 64, length buckets
    python bench/train_variants.py no_dropout
    python bench/train_variants.py batch256
    python bench/train_variants.py batch256_fixed     # no length buckets

LSTM 64 on the textclf split of data/rt_polarity.csv, max_len 34, three epochs of the training loop every run
uses (``textclf.training.loop``), timed one by one by the loop; prints the epoch times and samples/s of the
fastest epoch after the first (which pays for tracing).
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {
    "default": {"batch_size": 64},
    "no_dropout": {"batch_size": 64, "dropout_rate": 0.0, "spatial_dropout_rate": 0.0},
    "batch256": {"batch_size": 256},
    "batch256_fixed": {"batch_size": 256, "bucketing": False},
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python bench/train_variants.py {{{','.join(VARIANTS)}}}")
    from textclf import TrainConfig
    from textclf.training.fit import fit_prepared
    from textclf.training.prepare import prepare_in_memory
    from textclf.training.setup import seed_everything

    settings = VARIANTS[sys.argv[1]]
    config = TrainConfig(arch="lstm", pooling="last", max_len=34, epochs=3, patience=3, **settings)
    seed_everything(config.seed)
    prepared = prepare_in_memory(config, REPO / "data" / "rt_polarity.csv")
    seconds = fit_prepared(config, prepared, verbose=0).epoch_seconds["training"]
    print(f"{sys.argv[1]}: {settings}, epoch seconds {[round(s, 2) for s in seconds]}, "
          f"{prepared.train_count / min(seconds[1:]):,.0f} samples/s")


if __name__ == "__main__":
    main()
