"""The parts of a model with a wide branch, each alone and blended: their metrics, the report, the history picture."""

import numpy as np

from textclf.evaluation.metrics import classification_metrics, format_metrics
from textclf.training.parts import part_probabilities, parts_metrics

from test_cli import assert_picture


def test_each_part_alone_scores_as_the_blend_would_with_the_other_at_zero():
    recurrent = np.array([[0.25], [0.9]], np.float32)  # One sigmoid unit: the second class's probability.
    logits = np.array([[2.0], [-1.0]], np.float32)
    parts = part_probabilities(recurrent, logits, temperature=0.5)
    assert parts["recurrent"].dtype == parts["tfidf"].dtype == np.float32
    assert parts["recurrent"].tolist() == [[0.75, 0.25], [0.10000002384185791, 0.8999999761581421]]
    positive = 1 / (1 + np.exp(-0.5 * logits[:, 0]))  # The calibrated linear part: sigmoid(temperature * logit).
    np.testing.assert_allclose(parts["tfidf"], np.stack([1 - positive, positive], axis=1), rtol=1e-6)
    softmax = part_probabilities(np.array([[0.2, 0.5, 0.3]], np.float32), np.array([[0.0, 1.0, 2.0]], np.float32), 2.0)
    assert softmax["recurrent"].tolist() == [[0.20000000298023224, 0.5, 0.30000001192092896]]
    np.testing.assert_allclose(softmax["tfidf"], [np.exp([0.0, 2.0, 4.0]) / np.exp([0.0, 2.0, 4.0]).sum()], rtol=1e-6)


def test_the_parts_metrics_and_a_part_stuck_on_one_class():
    truths = np.array([0, 0, 1, 1], np.int32)
    stuck = np.array([[0.6, 0.4]] * 4, np.float32)  # One class for every row.
    tfidf = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]], np.float32)  # One row wrong.
    blend = np.array([[0.8, 0.2], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]], np.float32)  # Every row right.
    assert parts_metrics(truths, blend, {"recurrent": stuck, "tfidf": tfidf}, ["no", "yes"]) == {
        "recurrent": {"accuracy": 0.5, "macro_f1": 1 / 3, "predicted_classes": 1},
        "tfidf": {"accuracy": 0.75, "macro_f1": 0.7333333333333334, "predicted_classes": 2},
        "blend": {"accuracy": 1.0, "macro_f1": 1.0, "predicted_classes": 2},
    }


def test_the_report_lists_each_parts_accuracy_and_macro_f1():
    metrics = classification_metrics(["no", "no", "yes", "yes"], ["no", "no", "yes", "yes"], ["no", "yes"])
    metrics["parts"] = {"recurrent": {"accuracy": 0.5, "macro_f1": 1 / 3, "predicted_classes": 1},
                        "tfidf": {"accuracy": 0.75, "macro_f1": 0.7333333333333334, "predicted_classes": 2},
                        "blend": {"accuracy": 1.0, "macro_f1": 1.0, "predicted_classes": 2}}
    assert format_metrics(metrics).splitlines()[:9] == [
        "accuracy        1.0000",
        "macro-F1        1.0000",
        "rows            4",
        "",
        "part                      accuracy  macro-F1",
        "recurrent alone             0.5000    0.3333  stuck: one class",
        "TF-IDF alone                0.7500    0.7333",
        "blend                       1.0000    1.0000",
        "",
    ]
    del metrics["parts"]  # Without a wide branch: no parts.
    assert format_metrics(metrics).splitlines()[3:5] == ["", "class                    precision    recall        f1   support"]


def test_the_history_picture_marks_the_blends_final_accuracy(tmp_path, monkeypatch):
    import textclf.evaluation.reports as reports

    drawn = {}
    save = reports._save

    def keep_legends(pyplot, figure, path):
        axes = figure.axes
        drawn["legends"] = [[text.get_text() for text in axis.get_legend().get_texts()] for axis in axes]
        drawn["dashed"] = [list(line.get_ydata()) for line in axes[1].get_lines() if line.get_linestyle() == "--"]
        return save(pyplot, figure, path)

    monkeypatch.setattr(reports, "_save", keep_legends)
    history = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.45, 0.5], "accuracy": [0.5, 0.7, 0.8],
               "val_accuracy": [0.55, 0.75, 0.7]}
    reports.plot_history(history, tmp_path / "history.png", blend_accuracy=0.875)
    # The blend's best epoch is the run's; the recurrent part's lowest loss is only that.
    assert drawn == {"legends": [["training (recurrent part)", "validation (recurrent part)",
                                  "lowest validation loss (2)"],
                                 ["training (recurrent part)", "validation (recurrent part)",
                                  "blend (final): 0.875"]],
                     "dashed": [[0.875, 0.875]]}
    assert_picture(tmp_path / "history.png", min_width=800)
    reports.plot_history(history, tmp_path / "plain.png")  # Without a wide branch: the curves alone.
    assert drawn == {"legends": [["training", "validation", "best epoch (2)"], ["training", "validation"]],
                     "dashed": []}
