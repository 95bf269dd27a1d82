"""Many classes: the printed report, the confusion picture and a training run stay bounded."""

import subprocess
import sys

import numpy as np

from textclf.evaluation.metrics import classification_metrics, format_metrics
from textclf.evaluation.reports import most_confused

from test_cli import assert_picture


def test_most_confused_ranks_classes_by_their_wrong_predictions():
    matrix = np.array([[5, 0, 0, 0],
                       [3, 1, 0, 0],   # Class 1: 3 wrong as true label.
                       [0, 0, 9, 1],   # Class 2: 1 wrong; class 3: 1 (as predicted).
                       [0, 0, 0, 2]])
    # Class 0 has 3 wrong (as predicted), class 1 3 (as true): both kept, in index order; then 2 and 3 tie at 1,
    # and the larger class (2, 10 rows) goes first.
    assert most_confused(matrix, 2).tolist() == [0, 1]
    assert most_confused(matrix, 3).tolist() == [0, 1, 2]


def many_class_metrics(count=500, seed=0):
    rng = np.random.default_rng(seed)
    classes = [f"c{index}" for index in range(count)]
    truth = [classes[index] for index in rng.integers(0, count, 3 * count)]
    predicted = [label if rng.uniform() < 0.6 else classes[rng.integers(0, count)] for label in truth]
    return classification_metrics(truth, predicted, classes)


def test_the_report_of_500_classes_fits_a_screen():
    metrics = many_class_metrics()
    lines = format_metrics(metrics).splitlines()
    assert len(lines) == 5 + 30 + 1 + 2 + 10  # Header lines, 30 classes, a note, a blank and a title, 10 pairs.
    assert "(the 30 classes with the lowest F1 of 500, those with rows first; every class in metrics.json)" in lines
    worst = sorted((metrics["per_class"][name]["support"] == 0, metrics["per_class"][name]["f1-score"])
                   for name in metrics["classes"])[:30]
    worst = [f1 for _, f1 in worst]
    shown = [float(line.split()[3]) for line in lines[5:35]]
    assert shown == [round(value, 3) for value in worst]
    assert "most confused pairs (true -> predicted: rows)" in lines
    assert max(len(line) for line in lines) < 100


def test_the_confusion_picture_of_500_classes_is_bounded(tmp_path):
    # In a child process, so its peak memory is the picture's alone: VmHWM is the peak of the process's own memory
    # map, while ru_maxrss carries over the parent's peak across fork + exec (2.6 GB inside the full suite).
    script = ("import numpy as np; from textclf.evaluation.metrics import classification_metrics;"
              "from textclf.evaluation.reports import plot_confusion;"
              "rng = np.random.default_rng(0); classes = [f'c{i}' for i in range(500)];"
              "truth = [classes[i] for i in rng.integers(0, 500, 1500)];"
              "metrics = classification_metrics(truth, truth[1:] + truth[:1], classes);"
              f"plot_confusion(metrics, {str(tmp_path / 'c.png')!r});"
              "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(completed.stdout.split()[-1]) < 2 * 1024 * 1024  # KiB: under 2 GiB (500 classes drawn whole: > 20 GB).
    assert_picture(tmp_path / "c.png", min_width=1000)
