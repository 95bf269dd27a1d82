"""Pictures of a run: training history and confusion matrices (matplotlib, no display needed)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np


@functools.cache
def _cjk_family() -> str:
    """Registers Noto Sans CJK (Chinese, Japanese, Korean; the noto-cjk-sans-otc package) with matplotlib's font
    manager, once per process; returns its family name."""
    from matplotlib import font_manager
    from noto_cjk_sans_otc import FONT_PATH

    font_manager.fontManager.addfont(str(FONT_PATH))
    return font_manager.FontProperties(fname=str(FONT_PATH)).get_name()


@contextlib.contextmanager
def _pyplot():
    """pyplot, its text in DejaVu Sans (Latin, Greek, Cyrillic, Arabic, Hebrew) falling back glyph by glyph to
    Noto Sans CJK: a label such as 好评 was drawn as empty boxes.  Only this picture's settings change."""
    import matplotlib

    matplotlib.use("Agg")  # Files only: works on servers without a display.
    import matplotlib.pyplot as pyplot

    # Texts take their font when created, and glyphs are looked up when saved: both happen inside.
    with matplotlib.rc_context({"font.family": ["DejaVu Sans", _cjk_family()]}):
        yield pyplot


def _save(pyplot, figure, path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return Path(path)


def plot_history(history: dict, path, blend_accuracy: float | None = None) -> Path:
    """Loss and accuracy per epoch, training and validation, side by side, as a PNG at ``path``.

    ``history``: ``{"loss": [...], "val_loss": [...], "accuracy": [...], "val_accuracy": [...]}``;
    ``blend_accuracy``: with a wide branch, the blend's final validation accuracy, drawn as a dashed line.
    """
    with _pyplot() as pyplot:
        figure, axes = pyplot.subplots(1, 2, figsize=(10, 4), dpi=100)
        for axis, metric, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
            for key, label, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
                values = history.get(key, [])
                if values:
                    # With a wide branch, say whose curves these are: the blend exists only after the epochs.
                    shown = label if blend_accuracy is None else f"{label} (recurrent part)"
                    axis.plot(range(1, len(values) + 1), values, style, label=shown)
            if metric == "loss" and history.get("val_loss"):
                best = int(np.argmin(history["val_loss"])) + 1
                # With a wide branch the kept epoch is the blend's best (the log names it), not this one.
                name = "best epoch" if blend_accuracy is None else "lowest validation loss"
                axis.axvline(best, color="grey", linestyle=":", label=f"{name} ({best})")
            if metric == "accuracy" and blend_accuracy is not None:
                axis.axhline(blend_accuracy, color="tab:red", linestyle="--",
                             label=f"blend (final): {blend_accuracy:.3f}")
            axis.set_title(title)
            axis.set_xlabel("epoch")
            # Epochs are whole numbers: no 1.5 ticks on a short run.
            axis.xaxis.set_major_locator(pyplot.MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            axis.legend()
        return _save(pyplot, figure, path)


# Above this many classes the picture shows the most confused ones: a cell per class pair and a text per cell
# grow with its square (200 classes took 8 GB and 68 s to draw).
MAX_PICTURED_CLASSES = 30


def most_confused(matrix, limit: int) -> np.ndarray:
    """Sorted indices of the ``limit`` classes with the most wrong predictions, as true or as predicted label
    (ties: the larger class first)."""
    counts = np.asarray(matrix)
    errors = counts.sum(axis=0) + counts.sum(axis=1) - 2 * np.diag(counts)
    order = np.lexsort((-counts.sum(axis=1), -errors))  # The last key sorts first.
    return np.sort(order[:limit])


def plot_confusion_matrix(matrix, classes, path, normalize: bool = False) -> Path:
    """A labelled ``[C, C]`` confusion matrix (rows: true label, columns: predicted) as a PNG at ``path``.

    ``normalize``: show each row as shares of its true label instead of counts.  Above
    :data:`MAX_PICTURED_CLASSES` classes, only the most confused ones are drawn (the title says so).
    """
    with _pyplot() as pyplot:
        counts = np.asarray(matrix, dtype=float)
        title = "Confusion matrix"
        if len(classes) > MAX_PICTURED_CLASSES:
            shown = most_confused(counts, MAX_PICTURED_CLASSES)
            title = f"Confusion matrix: the {len(shown)} most confused of {len(classes)} classes"
            counts, classes = counts[np.ix_(shown, shown)], [classes[index] for index in shown]
        values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
        size = max(4.5, 0.7 * len(classes) + 2.5)
        figure, axis = pyplot.subplots(figsize=(size + 1, size), dpi=100)
        image = axis.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(values.max(), 1))
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set_xticks(range(len(classes)), labels=classes, rotation=45, ha="right")
        axis.set_yticks(range(len(classes)), labels=classes)
        axis.set_xlabel("predicted label")
        axis.set_ylabel("true label")
        axis.set_title(title + (" (row-normalised)" if normalize else ""))
        threshold = values.max() / 2 if values.size else 0
        for row, column in np.ndindex(values.shape):
            text = f"{values[row, column]:.2f}" if normalize else f"{int(counts[row, column])}"
            axis.text(column, row, text, ha="center", va="center",
                      color="white" if values[row, column] > threshold else "black", fontsize=9)
        return _save(pyplot, figure, path)


def plot_multilabel_confusion(matrices, classes, path, normalize: bool = False) -> Path:
    """One 2 x 2 matrix per class of a multi-label model (rows: true, columns: predicted; "no", "yes"), as a PNG.

    ``matrices``: ``[C, 2, 2]`` as scikit-learn's ``multilabel_confusion_matrix`` gives them; ``normalize``: each
    row as shares of its true value instead of counts.
    """
    with _pyplot() as pyplot:
        counts = np.asarray(matrices, dtype=float).reshape(-1, 2, 2)
        values = counts / np.maximum(counts.sum(axis=2, keepdims=True), 1) if normalize else counts
        columns = min(4, len(classes))
        rows = -(-len(classes) // columns)
        figure, axes = pyplot.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), dpi=100, squeeze=False)
        for axis in axes.flat[len(classes):]:
            axis.axis("off")
        for axis, name, shown, count in zip(axes.flat, classes, values, counts):
            axis.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
            axis.set_xticks([0, 1], labels=["no", "yes"])
            axis.set_yticks([0, 1], labels=["no", "yes"])
            axis.set_xlabel("predicted")
            axis.set_ylabel("true")
            axis.set_title(str(name))
            for row, column in np.ndindex(2, 2):
                text = f"{shown[row, column]:.2f}" if normalize else f"{int(count[row, column])}"
                axis.text(column, row, text, ha="center", va="center", fontsize=9,
                          color="white" if shown[row, column] > shown.max() / 2 else "black")
        figure.suptitle("Confusion matrix per class" + (" (row-normalised)" if normalize else ""))
        return _save(pyplot, figure, path)


def plot_confusion(metrics: dict, path, normalize: bool = False) -> Path:
    """The confusion picture of a metrics dictionary (``classification_metrics`` or ``multilabel_metrics``): one
    ``[C, C]`` matrix, or one yes/no matrix per class for a multi-label model."""
    if metrics.get("task") == "multilabel":
        return plot_multilabel_confusion(metrics["confusion_matrices"], metrics["classes"], path, normalize)
    return plot_confusion_matrix(metrics["confusion_matrix"], metrics["classes"], path, normalize)
