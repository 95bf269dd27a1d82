"""Properties over small random data sets: the estimator and ``textclf train`` either work or say what is wrong.

Data sets vary the number of classes (1-4), the rows per class (1 included), the labels (ints, strings, equal
numbers of several types such as 1, 1.0 and True, or strings and numbers mixed) and texts that are empty, only
spaces, duplicated, non-ASCII or any Unicode.  Each example trains a tiny model, so there are few.
"""

import csv
import io
import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from textclf.cli import main
from textclf.estimator import TextClassifier

from conftest import write_csv

SETTINGS = dict(epochs=1, units=4, embedding_dim=4, batch_size=8, max_len=6)
FAST = ["--epochs", "1", "--units", "4", "--embedding-dim", "4", "--batch-size", "8", "--max-len", "6"]
WORDS = ["good", "bad", "film", "café", "東京", "naïve", "ok", "x", "Ünïcödé", "🙂", "1", "-3"]
# Any text a user may hand over, except lone surrogates (not text: no UTF-8 encodes them).
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
TEXTS = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),  # Few words: many duplicates.
    st.sampled_from(["", " ", "\t\n ", "\u3000", "good", "good"]),  # Empty, only spaces, duplicates.
    ANY_TEXT,
)
# What the estimator and train may say instead of fitting (each a ValueError naming what is wrong).
REFUSALS = ("training needs at least two different labels", "Too few rows", "must hold labels of one kind")
LABELS = {
    "int": st.integers(-1000, 1000),
    "str": st.text(max_size=6).filter(str.strip),
    # Equal values of several types: 1, 1.0 and True are one class (as in scikit-learn), whatever their strings.
    "number": st.one_of(st.integers(-2, 2), st.integers(-2, 2).map(float), st.booleans()),
    "mixed": st.one_of(st.integers(-2, 2), st.sampled_from(["1", "a", "-2"])),
}


@st.composite
def datasets(draw, kinds=tuple(LABELS)):
    """``(kind, texts, labels)``: 1-4 classes of one of ``kinds``, each with 1-6 rows, in drawn order."""
    kind = draw(st.sampled_from(kinds))
    classes = draw(st.lists(LABELS[kind], min_size=1, max_size=4, unique_by=repr))
    rows = [(draw(TEXTS), label) for label in classes for _ in range(draw(st.integers(1, 6)))]
    order = draw(st.permutations(range(len(rows))))
    return kind, [rows[index][0] for index in order], [rows[index][1] for index in order]


def expected_refusal(labels) -> str | None:
    """The message a fit must refuse ``labels`` with, else ``None``: strings and numbers together; one class (by
    equality: 1 == 1.0); every class at most 2 rows, of which ``validation_fraction=0.2`` holds out none (each class
    holds out ``round(0.2 * rows)``)."""
    if len({isinstance(label, str) for label in labels}) > 1:
        return REFUSALS[2]
    counts = {label: labels.count(label) for label in labels}
    if len(counts) < 2:
        return REFUSALS[0]
    return REFUSALS[1] if max(counts.values()) <= 2 else None


@pytest.mark.slow  # 10 fits: about 35 s here.
@settings(max_examples=10, deadline=None)
@given(data=datasets(), new_texts=st.lists(TEXTS, max_size=4))
def test_the_estimator_predicts_fitted_classes_of_the_labels_type(data, new_texts):
    kind, texts, labels = data
    model = TextClassifier(**SETTINGS)
    refusal = expected_refusal(labels)
    if refusal:
        with pytest.raises(ValueError, match=refusal):
            model.fit(texts, labels)
        return
    model.fit(texts, labels)
    classes = model.classes_.tolist()
    assert len(classes) == len(set(labels)) and set(classes) == set(labels)
    queries = texts + new_texts
    predicted = model.predict(queries).tolist()
    assert len(predicted) == len(queries) and set(predicted) <= set(classes)
    # Ints stay ints, strings strings; numbers of several types share the type numpy gives them together.
    expected_type = {"int": int, "str": str}.get(kind, type(np.asarray(labels).tolist()[0]))
    assert {type(label) for label in classes + predicted} == {expected_type}
    probabilities = model.predict_proba(queries)
    assert probabilities.shape == (len(queries), len(classes))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


@pytest.mark.slow  # 6 runs of train, predict and evaluate: about 90 s here.
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=datasets(kinds=("int", "str")))
def test_cli_train_predict_evaluate_on_the_kept_rows_or_say_why_not(data, tmp_path_factory, capsys):
    _, texts, labels = data
    folder = tmp_path_factory.mktemp("train")
    path = write_csv(folder / "data.csv", [(text, str(label)) for text, label in zip(texts, labels)])
    # The rows train keeps: a text that is not only spaces, and the label stripped.
    kept = [str(label).strip() for text, label in zip(texts, labels) if text.strip()]
    status = main([str(item) for item in ["train", path, "--output", folder / "model", *FAST]])
    captured = capsys.readouterr()
    refusal = expected_refusal(kept) if kept else "has no usable rows"
    if refusal:
        assert status == 2 and captured.err.strip().splitlines()[-1].startswith("textclf train: error: ")
        assert refusal in captured.err
        return
    assert status == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    classes = json.loads(open(os.path.join(summary["run"], "labels.json"), encoding="utf-8").read())["classes"]
    assert sorted(classes) == sorted(set(kept))
    # The export classifies the same rows, texts as written, each with one of the classes.
    status = main(["predict", summary["export"], "--input", str(path), "--format", "csv"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    predicted = list(csv.reader(io.StringIO(captured.out, newline="")))
    assert [row[0] for row in predicted[1:]] == [text for text in texts if text.strip()]
    assert {row[1] for row in predicted[1:]} <= set(classes)
    status = main(["evaluate", summary["export"], str(path), "--output", str(folder / "report.json")])
    assert status == 0, capsys.readouterr().err
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["classes"] == classes and report["support"] == len(kept)


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(1, 6), min_size=2, max_size=40), fraction=st.sampled_from([0.1, 0.2, 0.5]),
       seed=st.integers(0, 3))
def test_the_baselines_held_out_split_partitions_the_rows_or_says_why_not(counts, fraction, seed):
    from textclf.data.dataset import Dataset
    from textclf.errors import TextclfError
    from textclf.evaluation.baseline import held_out_split

    labels = [str(label) for label, count in enumerate(counts) for _ in range(count)]
    data = Dataset([f"row {index}" for index in range(len(labels))], labels, "data.csv")
    try:
        rest, test = held_out_split(data, fraction, seed)
    except TextclfError as error:
        # Only where no class spares a row by its share (round(fraction * rows), keeping one).
        assert all(min(round(fraction * count), count - 1) == 0 for count in counts)
        assert str(error).startswith(f"Too few rows ({len(labels)}) to hold out a validation set")
        return
    assert sorted(rest.texts + test.texts) == sorted(data.texts)
    # train_test_split holds out ceil(fraction * rows) of the classes with two rows or more where it can stratify
    # (a test and a training row of each); else each class gives round(fraction * rows) but keeps one.
    shared = [count for count in counts if count > 1]
    tested = math.ceil(fraction * sum(shared))
    stratifies = bool(shared) and min(tested, sum(shared) - tested) >= len(shared)
    assert len(test) == (tested if stratifies else sum(min(round(fraction * count), count - 1) for count in counts))
    assert set(rest.labels) == set(labels) and set(test.labels) <= set(labels)
    assert all(labels[int(text.split()[1])] == label for text, label in zip(rest.texts + test.texts,
                                                                           rest.labels + test.labels))


def test_labels_are_classes_by_value_and_strings_do_not_mix_with_numbers():
    from textclf.estimator import _labels

    # 1 and 1.0 were two classes ("1", "1.0") both mapped back to 1.0; now one, as np.unique finds them.
    assert _labels([1, 1.0, 2, True]).tolist() == [1.0, 1.0, 2.0, 1.0]
    assert [str(label) for label in _labels([1, 1.0, 2])] == ["1.0", "1.0", "2.0"]
    assert _labels([3, -4, 3]).tolist() == [3, -4, 3] and _labels(np.array([3, -4])).dtype == np.int64
    assert _labels(["7", "0012", "12"]).tolist() == ["7", "0012", "12"]
    # 1 and "1" were one class, and the classes came back as strings (numpy's common type of 1 and "a").
    with pytest.raises(ValueError, match=r"^`y` must hold labels of one kind: all strings or all numbers. "
                                         r"Received: y\[0\]='a' and y\[1\]=1$"):
        _labels(["a", 1, "1", 2])
