"""Error analysis: a run's ``validation_predictions.jsonl`` and ``textclf evaluate --mistakes``."""

import collections
import csv
import json
import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from textclf import TrainConfig, load, train
from textclf.cli import main
from textclf.data.streaming import RowSplit
from textclf.errors import TextclfError
from textclf.evaluation.mistakes import format_mistakes
from textclf.serve.predict import _Classifier, evaluate
from textclf.training.validation_file import MAX_SCORED_CLASSES, exact, scores_of

from conftest import NEGATIVE, POSITIVE, make_rows, multilabel_rows, tiny_config, write_csv


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def argmax_label(scores: dict) -> str:
    """The class of the highest score, the first of equal ones (``argmax`` in class order)."""
    return max(scores, key=scores.get)


def metrics_of(rows, key, classes):
    """Accuracy and macro-F1 of the predictions in ``rows[...][key]``, as textclf computes them (macro-F1 over the
    classes with a true or a predicted row, in class order)."""
    truths = [classes.index(row["true"]) for row in rows]
    predicted = [classes.index(argmax_label(row[key])) for row in rows]
    seen = [index for index in range(len(classes)) if index in set(truths) | set(predicted)]
    return {"accuracy": float(accuracy_score(truths, predicted)),
            "macro_f1": float(f1_score(truths, predicted, labels=seen, average="macro", zero_division=0)),
            "predicted_classes": len(set(predicted))}


def confusion_of(rows, classes):
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for row in rows:
        matrix[classes.index(row["true"]), classes.index(row["predicted"])] += 1
    return matrix.tolist()


@pytest.mark.slow
def test_a_run_with_a_wide_branch_saves_every_validation_row_and_each_parts_scores(tmp_path, capsys):
    import keras

    from textclf.model.factory import recurrent_head
    from textclf.serve.predict import RunClassifier

    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 80, seed=11)
    train_csv, valid_csv = write_csv(tmp_path / "train.csv", rows[:60]), write_csv(tmp_path / "valid.csv", rows[60:])
    result = train(train_csv, tiny_config(epochs=2), valid=valid_csv, output=tmp_path / "out", verbose=0)
    saved = read_jsonl(result.run_dir / "validation_predictions.jsonl")
    classes = ["fresh", "rotten"]
    # Every validation row, in the file's order, with its true label; the prediction is the blend's highest score.
    assert [(row["text"], row["true"]) for row in saved] == rows[60:]
    assert all(list(row) == ["text", "true", "predicted", "scores", "recurrent_scores", "tfidf_scores"]
               for row in saved)
    assert all(list(row[key]) == classes for row in saved for key in ("scores", "recurrent_scores", "tfidf_scores"))
    assert [row["predicted"] for row in saved] == [argmax_label(row["scores"]) for row in saved]
    # The blend's metrics, recomputed from the saved scores, are the run's; each part's macro-F1 is the one the
    # blend's choice saw (run.json, rounded).
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    parts = {name: metrics_of(saved, key, classes) for name, key in
             (("recurrent", "recurrent_scores"), ("tfidf", "tfidf_scores"), ("blend", "scores"))}
    assert (parts["blend"]["accuracy"], parts["blend"]["macro_f1"]) == (metrics["accuracy"], metrics["macro_f1"])
    assert metrics["confusion_matrix"] == confusion_of(saved, classes)
    chosen = json.loads((result.run_dir / "run.json").read_text())["wide"]["validation_macro_f1"]
    assert chosen == {name: round(parts[name]["macro_f1"], 4) for name in ("recurrent", "tfidf", "blend")}
    # The recurrent part's scores are the saved model's recurrent branch on those texts.
    run = RunClassifier(result.run_dir)
    branch = keras.Model(run.run.model.inputs[0], recurrent_head(run.run.model).output)
    positive = np.asarray(branch(run.tokenize([text for text, _ in rows[60:]])))[:, 0]
    np.testing.assert_allclose([row["recurrent_scores"]["rotten"] for row in saved], positive, atol=1e-5)
    # metrics.json and the training report give each part's metrics, those of its saved scores.
    assert metrics["parts"] == parts
    names = {"recurrent": "recurrent alone", "tfidf": "TF-IDF alone", "blend": "blend"}
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("part ", *names.values()))]
    assert printed == [f"{'part':<24}{'accuracy':>10}{'macro-F1':>10}"] + [
        f"{name:<24}{parts[key]['accuracy']:>10.4f}{parts[key]['macro_f1']:>10.4f}"
        + ("  stuck: one class" if parts[key]["predicted_classes"] == 1 else "") for key, name in names.items()]


def test_a_multiclass_runs_parts_are_those_of_its_saved_scores(multiclass_result, multiclass_csv):
    saved = read_jsonl(multiclass_result.run_dir / "validation_predictions.jsonl")
    metrics = json.loads((multiclass_result.run_dir / "metrics.json").read_text())
    classes = metrics["classes"]
    assert len(saved) == metrics["support"] == 18
    data = collections.Counter(read_rows(multiclass_csv))
    assert not collections.Counter((row["text"], row["true"]) for row in saved) - data  # Rows of the data.
    parts = {name: metrics_of(saved, key, classes) for name, key in
             (("recurrent", "recurrent_scores"), ("tfidf", "tfidf_scores"), ("blend", "scores"))}
    assert (parts["blend"]["accuracy"], parts["blend"]["macro_f1"]) == (metrics["accuracy"], metrics["macro_f1"])
    assert metrics["confusion_matrix"] == confusion_of(saved, classes)
    assert metrics["parts"] == parts


@pytest.mark.slow
def test_a_streamed_run_without_a_wide_branch_saves_the_models_scores(binary_csv, tmp_path):
    result = train(binary_csv, tiny_config(streaming="on", epochs=2), output=tmp_path / "out", verbose=0)
    saved = read_jsonl(result.run_dir / "validation_predictions.jsonl")
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert "parts" not in metrics and len(saved) == metrics["support"] == 18
    assert all(list(row) == ["text", "true", "predicted", "scores"] for row in saved)
    # The rows RowSplit held out (18 of the 80 for seed 42), in the file's order.
    split = RowSplit(result.config.seed, result.config.validation_fraction)
    assert [(row["text"], row["true"]) for row in saved] == [
        row for number, row in enumerate(read_rows(binary_csv)) if split.is_validation(number)]
    assert metrics["confusion_matrix"] == confusion_of(saved, metrics["classes"])
    # Each row's scores are the model's on that row's text (the texts are read again, in the rows' order).
    probabilities = load(result.run_dir).probabilities([row["text"] for row in saved])
    np.testing.assert_allclose([list(row["scores"].values()) for row in saved], probabilities, atol=1e-5)


@pytest.mark.slow
def test_a_multilabel_run_saves_label_sets(tmp_path):
    from sklearn.metrics import f1_score as f1

    rows = multilabel_rows(80, seed=5)
    train_csv, valid_csv = write_csv(tmp_path / "train.csv", rows[:60]), write_csv(tmp_path / "valid.csv", rows[60:])
    result = train(train_csv, tiny_config(multi_label=True, epochs=2), valid=valid_csv, output=tmp_path / "out",
                   verbose=0)
    saved = read_jsonl(result.run_dir / "validation_predictions.jsonl")
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    classes, threshold = metrics["classes"], metrics["threshold"]
    assert [(row["text"], row["true"]) for row in saved] == [(text, sorted(labels.split("|"), key=classes.index))
                                                            for text, labels in rows[60:]]
    assert all(list(row) == ["text", "true", "predicted", "scores"] and list(row["scores"]) == classes
               for row in saved)
    assert [row["predicted"] for row in saved] == [
        [name for name in classes if np.float32(row["scores"][name]) >= threshold] for row in saved]
    hot = [[[name in row[key] for name in classes] for row in saved] for key in ("true", "predicted")]
    assert metrics["micro_f1"] == float(f1(*np.array(hot, dtype=int), average="micro", zero_division=0))


def test_above_twenty_classes_a_row_keeps_the_highest_scores_and_its_true_class():
    classes = [f"c{index:02d}" for index in range(30)]
    values = np.linspace(0.0, 0.029, 30, dtype=np.float32)[::-1].copy()  # c00 highest ... c29 lowest
    kept = scores_of(values, classes, [29])
    assert list(kept) == classes[:MAX_SCORED_CLASSES] + ["c29"]
    assert kept["c00"] == 0.029 and kept["c29"] == 0.0
    assert list(scores_of(values[:3], classes[:3])) == classes[:3]
    # The shortest decimal that reads back as the same float32.
    assert [exact(np.float32(value)) for value in (0.1, 1 / 3, 1e-7)] == [0.1, 0.33333334, 1e-07]
    assert np.float32(exact(np.float32(1 / 3))) == np.float32(1 / 3)


class Planted(_Classifier):
    """A classifier whose probabilities are given per text."""

    def __init__(self, scores: dict, classes, path, config=None):
        self.scores, self.classes, self.path, self.config = scores, list(classes), path, config or TrainConfig()

    def probabilities(self, texts):
        return np.array([self.scores[text] for text in texts], dtype=np.float32)


LONG = "a dog who chased the postman down the whole street and back again"
CJK = "猫が鳴いている猫が鳴いている猫が鳴いている"
PLANTED = [  # text, true label, the planted probabilities of bird, cat, dog
    ("a small bird sings", "bird", [0.7, 0.2, 0.1]),
    ("the cat\tpurrs\nloudly", "cat", [0.1, 0.3, 0.6]),
    (LONG, "dog", [0.05, 0.9, 0.05]),
    (CJK, "bird", [0.1, 0.8, 0.1]),
    ("a dog barks", "dog", [0.2, 0.2, 0.6]),
    ("another cat", "cat", [0.2, 0.2, 0.6]),
    ("a bird or a cat", "bird", [0.25, 0.5, 0.25]),
]


def test_the_most_confident_mistakes_are_the_wrong_rows_with_the_highest_score(tmp_path):
    data = write_csv(tmp_path / "planted.csv", [(text, label) for text, label, _ in PLANTED])
    classifier = Planted({text: scores for text, _, scores in PLANTED}, ["bird", "cat", "dog"], tmp_path)
    metrics = evaluate(classifier, data, mistakes=4)
    # Rows 1 and 5 tie at 0.6: the data's order.  Lines count the header, and row 1's text spans two.
    assert metrics["mistakes"] == [
        {"row": 2, "line": 5, "text": LONG, "true": "dog", "predicted": "cat", "score": 0.9},
        {"row": 3, "line": 6, "text": CJK, "true": "bird", "predicted": "cat", "score": 0.8},
        {"row": 1, "line": 3, "text": "the cat\tpurrs\nloudly", "true": "cat", "predicted": "dog", "score": 0.6},
        {"row": 5, "line": 8, "text": "another cat", "true": "cat", "predicted": "dog", "score": 0.6},
    ]
    assert metrics["confused_pairs"] == [{"true": "bird", "predicted": "cat", "rows": 2},
                                         {"true": "cat", "predicted": "dog", "rows": 2},
                                         {"true": "dog", "predicted": "cat", "rows": 1}]
    # Texts on one line, cut to 50 terminal columns (a CJK character takes two).
    assert format_mistakes(metrics, columns=50).splitlines() == [
        "most confident mistakes (4 of 5 wrong rows: score, true -> predicted, text)",
        "  0.9000  dog -> cat  a dog who chased the postma…",
        "  0.8000  bird -> cat  猫が鳴いている猫が鳴いてい…",
        "  0.6000  cat -> dog  the cat purrs loudly",
        "  0.6000  cat -> dog  another cat",
        "",
        "most confused pairs (true -> predicted: rows)",
        "  bird -> cat: 2",
        "  cat -> dog: 2",
        "  dog -> cat: 1",
    ]
    right = evaluate(classifier, write_csv(tmp_path / "right.csv", [PLANTED[0][:2]]), mistakes=3)
    assert right["mistakes"] == [] and right["confused_pairs"] == []
    assert format_mistakes(right, columns=80).splitlines() == [
        "most confident mistakes: none (every row is right)", "", "most confused pairs (true -> predicted: rows)",
        "  none"]


def test_mistakes_must_be_a_positive_count_of_a_single_label_model(tmp_path, capsys):
    data = write_csv(tmp_path / "planted.csv", [(text, label) for text, label, _ in PLANTED])
    scores = {text: values for text, _, values in PLANTED}
    for bad in (0, -2, True, 1.5):
        with pytest.raises(TextclfError, match=rf"^`mistakes` must be a positive integer. Received: mistakes={bad}$"):
            evaluate(Planted(scores, ["bird", "cat", "dog"], tmp_path), data, mistakes=bad)
    multilabel = Planted(scores, ["bird", "cat", "dog"], tmp_path, TrainConfig(multi_label=True, threshold=0.5))
    with pytest.raises(TextclfError, match=rf"^`mistakes` lists the mistakes of single-label models; "
                                           rf"{re.escape(str(tmp_path))} is multi-label. Received: mistakes=3$"):
        evaluate(multilabel, data, mistakes=3)
    # Checked before the model is loaded.
    assert main(["evaluate", str(tmp_path / "no-model"), str(data), "--mistakes", "0"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "textclf evaluate: error: `mistakes` must be a positive integer. Received: mistakes=0")


def test_evaluate_prints_and_writes_the_most_confident_mistakes(binary_result, tmp_path, capsys, monkeypatch):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 20, seed=5)
    # Labels swapped on four rows: mistakes of a model that learned the words.
    rows = [(text, {"fresh": "rotten", "rotten": "fresh"}[label] if index < 4 else label)
            for index, (text, label) in enumerate(rows)]
    data, report = write_csv(tmp_path / "swapped.csv", rows), tmp_path / "report.json"
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["evaluate", str(binary_result.export_dir), str(data), "--mistakes", "3", "--output",
                 str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    predictions = load(binary_result.export_dir).predict([text for text, _ in rows])
    wrong = [index for index, (text, label) in enumerate(rows) if predictions[index].label != label]
    listed = sorted(wrong, key=lambda index: -predictions[index].score)[:3]  # sorted keeps ties in row order.
    expected = [{"row": index, "line": index + 2, "text": rows[index][0], "true": rows[index][1],
                 "predicted": predictions[index].label, "score": round(predictions[index].score, 6)}
                for index in listed]
    written = json.loads(report.read_text())
    assert wrong == [0, 1, 2, 3] and written["mistakes"] == expected  # The swapped rows, and only them.
    start = out.index("most confident mistakes (3 of 4 wrong rows: score, true -> predicted, text)")
    assert out[start + 1: start + 4] == [
        f"  {predictions[index].score:.4f}  {rows[index][1]} -> {predictions[index].label}  {rows[index][0]}"
        for index in listed]
    # Most rows first; a tie in the confusion matrix's order (fresh -> rotten, then rotten -> fresh).
    pairs = collections.Counter((rows[index][1], predictions[index].label) for index in wrong)
    ordered = sorted((pair for pair in (("fresh", "rotten"), ("rotten", "fresh")) if pairs[pair]),
                     key=lambda pair: -pairs[pair])
    assert written["confused_pairs"] == [{"true": true, "predicted": predicted, "rows": pairs[(true, predicted)]}
                                         for true, predicted in ordered]
