"""Shared fixtures: tiny literal datasets and one tiny trained run per task.

TensorFlow is imported once per pytest process; the trained runs are
session-scoped so the suite trains each only once.
"""

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", help="also run the tests marked slow (CI and the README do)")


def pytest_collection_modifyitems(config, items):
    """Deselects the tests marked slow unless --all is given, -m chooses, or tests are named one by one."""
    named = any("::" in argument for argument in config.args)
    if config.getoption("--all") or config.option.markexpr or named:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]

REPO = Path(__file__).resolve().parent.parent


# Settings that train in a second or two: the CLI tests' runs.
TINY = ["--epochs", "2", "--units", "4", "--embedding-dim", "4", "--batch-size", "16", "--max-len", "6"]


def run_cli(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``textclf ARGV`` run in this process."""
    from textclf.cli import main

    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def error_line(err):
    """The last line of standard error: the command's one-line error."""
    return err.strip().splitlines()[-1]

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


def multilabel_rows(count, seed):
    """``count`` rows with one or two topics each, joined with "|"."""
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for index in range(count):
        chosen = rng.sample(names, 1 + index % 2)
        words = [word for name in chosen for word in rng.sample(TOPICS[name], 2)] + rng.sample(NEUTRAL, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), "|".join(chosen)))
    return rows


class Crash(Exception):
    """Stands for the process dying in the middle of training."""


def whole_and_resumed(data, config, folder, monkeypatch, capture, crash_after: int, before_resume=None):
    """``(uninterrupted result, resumed result, the resumed run's log)``: ``data`` trained whole into
    ``folder/whole``; then into ``folder/resumed``, killed after its ``crash_after``-th checkpoint save, and run
    again (``before_resume(folder / "resumed")`` in between)."""
    from textclf import train

    whole = train(data, config, output=folder / "whole", verbose=0)
    crash_at_save(monkeypatch, crash_after)
    try:
        train(data, config, output=folder / "resumed", verbose=0)
    except Crash:
        pass
    else:
        raise AssertionError(f"no crash after checkpoint save {crash_after}")
    monkeypatch.undo()
    capture.readouterr()
    if before_resume is not None:
        before_resume(folder / "resumed")
    resumed = train(data, config, output=folder / "resumed", verbose=0)
    return whole, resumed, capture.readouterr().err


def crash_at_save(monkeypatch, number):
    """Makes the ``number``-th checkpoint save of this process raise :class:`Crash` once written."""
    import tensorflow as tf

    save, saved = tf.train.CheckpointManager.save, []

    def save_then_crash(manager, *args, **kwargs):
        saved.append(save(manager, *args, **kwargs))
        if len(saved) == number:
            raise Crash(f"stopped after writing {saved[-1]}")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_crash)
