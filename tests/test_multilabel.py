"""Multi-label: several labels per text, through training, export and predict."""

import json

import numpy as np
import pytest
import tensorflow as tf

from textclf import load
from textclf.cli import main
from textclf.data.labels import label_sets, multi_hot
from textclf.evaluation.multilabel import tune_threshold

from conftest import multilabel_rows, write_csv
from test_cli import assert_picture


def test_label_sets_multi_hot_and_threshold():
    sets = label_sets(["a|b", " b ", "c|a|a"], "|")
    assert sets == [["a", "b"], ["b"], ["c", "a"]]
    assert multi_hot(sets, ["a", "b", "c"]).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match=r"data: row 2 \(counting rows with a text and a label\) has no label after splitting '\|' on '\|'"):
        label_sets(["a", "|"], "|")
    targets = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    probabilities = np.array([[0.9, 0.2], [0.3, 0.7], [0.35, 0.6]])
    assert tune_threshold(probabilities, targets) == 0.35  # The only grid point in (0.3, 0.35].
    # Every threshold in (0.1, 0.9] is perfect here: the tie goes to the one nearest 0.5.
    assert tune_threshold(np.array([[0.9, 0.1], [0.1, 0.9]]), np.eye(2)) == 0.5


@pytest.mark.slow
def test_multilabel_round_trip_through_training_export_and_predict(tmp_path, capsys):
    data = write_csv(tmp_path / "tags.csv", multilabel_rows(120, seed=3))
    output = tmp_path / "tags"
    status = main([str(a) for a in ["train", data, "--multi-label", "--output", output, "--epochs", "8",
                                    "--units", "8", "--embedding-dim", "8", "--max-len", "8",
                                    "--learning-rate", "0.03", "--batch-size", "16"]])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "3 labels (multilabel)" in err and "threshold 0.5 (best validation micro-F1)" in err
    summary = json.loads((output / "1" / "textclf.json").read_text())
    assert summary["task"] == "multilabel" and summary["classes"] == ["politics", "science", "sport"]
    threshold = summary["config"]["threshold"]
    # Each topic has its own words, so the model separates the validation labels (true ones scored above 0.8, the
    # others below 0.16): every grid point in that gap has micro-F1 1, and the tie goes to the one nearest 0.5.
    assert threshold == 0.5

    signature = tf.saved_model.load(str(output / "1")).signatures["serving_default"]
    served = signature(text=tf.constant(["goal match vote minister", "atom cell"]))
    assert served["labels"].shape == (2, 3)
    assert served["labels"].numpy().tolist() == [
        [b"politics" if score >= threshold else b"" for score in row[:1]] +
        [b"science" if row[1] >= threshold else b""] + [b"sport" if row[2] >= threshold else b""]
        for row in served["scores"].numpy()
    ]

    classifier = load(output)
    predictions = classifier.predict(["goal match vote minister", "atom cell theory"])
    assert predictions[0].labels == ["politics", "sport"]
    assert predictions[1].labels == ["science"]
    classifier.threshold = 0.0  # A user's own threshold replaces the tuned one: every label's probability is >= 0.
    assert classifier.predict(["atom cell theory"])[0].labels == ["politics", "science", "sport"]

    status = main(["predict", str(output), "goal team score league"])
    line = json.loads(capsys.readouterr().out.strip())
    assert status == 0 and line["labels"] == ["sport"]

    status = main(["evaluate", str(output), str(data)])
    out = capsys.readouterr().out
    assert status == 0 and "micro-F1" in out and "subset accuracy" in out
    # The report and its picture: one yes/no matrix per class (a KeyError before), in the run folder too.
    status = main(["evaluate", str(output), str(data), "--output", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    assert status == 0 and f"confusion matrix drawn in {tmp_path / 'confusion_matrix.png'}" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert np.asarray(report["confusion_matrices"]).shape == (3, 2, 2)
    assert_picture(tmp_path / "confusion_matrix.png", min_width=900)  # Three 2 x 2 matrices side by side.
    assert_picture(next((output / "runs").iterdir()) / "confusion_matrix.png", min_width=900)
