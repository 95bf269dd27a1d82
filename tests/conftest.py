"""Shared fixtures: tiny literal datasets and one tiny trained run per task.

TensorFlow is imported once per pytest process; the trained runs are
session-scoped so the suite trains each only once.
"""

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent

POSITIVE = ["good", "great", "superb", "lovely", "brilliant", "moving"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak"]
NEUTRAL = ["the", "movie", "film", "plot", "actors", "story", "was", "a"]
TOPICS = {
    "sport": ["goal", "match", "team", "score", "league", "coach"],
    "politics": ["vote", "minister", "party", "election", "senate", "law"],
    "science": ["atom", "cell", "theory", "experiment", "data", "physics"],
}


def make_rows(vocabularies: dict, count: int, seed: int):
    """``count`` (text, label) rows; each text mixes 2-3 words of its label with filler."""
    rng = random.Random(seed)
    labels = list(vocabularies)
    rows = []
    for index in range(count):
        label = labels[index % len(labels)]
        words = rng.sample(vocabularies[label], 2) + rng.sample(NEUTRAL, 3)
        rng.shuffle(words)
        rows.append((" ".join(words).capitalize() + rng.choice([".", "!", "..."]), label))
    return rows


def write_csv(path: Path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def binary_csv(tmp_path_factory):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 80, seed=1)
    return write_csv(tmp_path_factory.mktemp("binary") / "reviews.csv", rows)


@pytest.fixture(scope="session")
def multiclass_csv(tmp_path_factory):
    rows = make_rows(TOPICS, 90, seed=2)
    return write_csv(tmp_path_factory.mktemp("multiclass") / "topics.csv", rows)


def tiny_config(**changes):
    from textclf import TrainConfig

    settings = dict(epochs=4, units=8, embedding_dim=8, batch_size=16, max_len=8, learning_rate=0.02, patience=2)
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture(scope="session")
def binary_result(binary_csv, tmp_path_factory):
    from textclf import train

    output = tmp_path_factory.mktemp("binary_export") / "reviews"
    return train(binary_csv, tiny_config(), output=output, verbose=0)


@pytest.fixture(scope="session")
def multiclass_result(multiclass_csv, tmp_path_factory):
    from textclf import train

    output = tmp_path_factory.mktemp("multiclass_export") / "topics"
    return train(multiclass_csv, tiny_config(arch="gru", padding="pre", truncating="pre"), output=output, verbose=0)
