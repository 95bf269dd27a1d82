"""Training throughput of textclf's pipeline under one variant: batch size, buckets, dropout, XLA.

Usage (from the repository root):

    python bench/train_variants.py default            # batch 64, length buckets
    python bench/train_variants.py no_dropout
    python bench/train_variants.py batch256
    python bench/train_variants.py batch256_fixed     # no length buckets
    python bench/train_variants.py batch256_xla       # jit_compile=True (needs use_cudnn=False)

LSTM 64 on the textclf split of data/rt_polarity.csv, max_len 34, three epochs timed one by one; prints the
epoch times and samples/s of the fastest epoch after the first (which pays for tracing).
"""

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = {
    "default": {"batch_size": 64},
    "no_dropout": {"batch_size": 64, "dropout_rate": 0.0, "spatial_dropout_rate": 0.0},
    "batch256": {"batch_size": 256},
    "batch256_fixed": {"batch_size": 256, "bucketing": False},
    "batch256_xla": {"batch_size": 256, "xla": True},
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python bench/train_variants.py {{{','.join(VARIANTS)}}}")
    from textclf import TrainConfig
    from textclf.train.fit import datasets, new_tokenizer
    from textclf.model.factory import build_model
    from textclf.train.run import prepare_split

    settings = dict(VARIANTS[sys.argv[1]])
    xla = settings.pop("xla", False)
    config = TrainConfig(arch="lstm", pooling="last", max_len=34, **settings)
    split = prepare_split(config, REPO / "data" / "rt_polarity.csv")
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(split.train.texts)
    train_batches, _ = datasets(config, tokenizer, split.classes, split.train, split.valid)
    model = build_model(config, tokenizer.vocabulary_size, len(split.classes), use_cudnn=False if xla else "auto")
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=xla)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        model.fit(train_batches, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    print(f"{sys.argv[1]}: {settings}{' xla' if xla else ''}, epoch seconds {[round(s, 2) for s in seconds]}, "
          f"{len(split.train) / min(seconds[1:]):,.0f} samples/s")


if __name__ == "__main__":
    main()
