"""The run's pictures draw the glyphs of every label: Chinese, Japanese and Korean as well as Latin."""

import warnings

import matplotlib
import numpy as np

from textclf.evaluation.metrics import classification_metrics
from textclf.evaluation.reports import plot_confusion, plot_history, plot_multilabel_confusion

from test_cli import assert_picture

CLASSES = ["好评", "差评", "ニュース", "한국어", "café"]


def test_pictures_draw_cjk_labels_without_missing_glyphs(tmp_path):
    metrics = classification_metrics(CLASSES + CLASSES[:1], CLASSES[1:] + CLASSES[:2], CLASSES)
    history = {"loss": [0.7, 0.5], "val_loss": [0.6, 0.55], "accuracy": [0.5, 0.7], "val_accuracy": [0.6, 0.65]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion(metrics, tmp_path / "confusion_matrix.png")
        plot_multilabel_confusion(np.ones((len(CLASSES), 2, 2)), CLASSES, tmp_path / "per_class.png")
        plot_history(history, tmp_path / "history.png")
    # DejaVu Sans alone drew boxes: "Glyph 22909 (\N{CJK UNIFIED IDEOGRAPH-597D}) missing from font(s) DejaVu Sans."
    assert [str(warning.message) for warning in caught if "Glyph" in str(warning.message)] == []
    for name in ("confusion_matrix.png", "per_class.png", "history.png"):
        assert_picture(tmp_path / name, min_width=450)
    assert matplotlib.rcParams["font.family"] == ["sans-serif"]  # The program's own pictures keep their settings.
