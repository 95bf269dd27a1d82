"""What the terminal shows a person: flags taken only as spelled, --version, --quiet, Ctrl-C, CJK tables."""

import json
import logging

import pytest

from textclf.cli import main
from textclf.cli.flags import build_parser
from textclf.log import log

from conftest import tiny_config


def exit_of(capsys, *argv):
    """``(status, last line of standard error)`` of a command line that argparse refuses."""
    with pytest.raises(SystemExit) as stopped:
        main([str(arg) for arg in argv])
    return stopped.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def test_a_flag_is_never_read_as_a_longer_flag_it_begins(capsys):
    # argparse's prefix matching took --lr for --lr-schedule.
    assert exit_of(capsys, "train", "data.csv", "--lr", "0.1") == (
        2, "textclf: error: unrecognized arguments: --lr 0.1")
    args, extra = build_parser().parse_known_args(["evaluate", "model", "data.csv", "--norm"])
    assert (args.normalize, extra) == (False, ["--norm"])
    args, extra = build_parser().parse_known_args(["train", "data.csv", "--lr-schedule", "cosine"])
    assert (args.lr_schedule, extra) == ("cosine", [])


def test_version_prints_the_package_version(capsys):
    import importlib.metadata

    import textclf

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert (stopped.value.code, capsys.readouterr().out) == (0, "textclf 0.1.0\n")
    assert importlib.metadata.version("textclf") == textclf.__version__  # pyproject.toml and the package agree.


@pytest.mark.parametrize("flag", ["--output", "--plot"])
def test_evaluate_refuses_a_missing_output_folder_before_loading_the_model(flag, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    for folder, problem in ((tmp_path / "missing", "does not exist"), (tmp_path / "a-file", "is not a folder")):
        # Neither the model nor the data exists: the folder is the first thing checked.
        status = main(["evaluate", str(tmp_path / "no-model"), str(tmp_path / "no-data.csv"), flag,
                       str(folder / "report.json")])
        captured = capsys.readouterr()
        assert (status, captured.out, captured.err) == (
            2, "", f"textclf evaluate: error: argument {flag}: folder {folder} {problem}; create it or choose another. "
            f"Received: {flag} {folder / 'report.json'}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]  # Nothing created.


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import textclf.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(textclf.cli.COMMANDS, "predict", interrupted)
    status = main(["predict", "model", "a text"])
    captured = capsys.readouterr()
    assert (status, captured.out, captured.err) == (130, "", "textclf predict: interrupted\n")


@pytest.mark.slow
def test_a_training_stopped_by_ctrl_c_keeps_its_checkpoint_and_resumes(binary_csv, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    save, saved = tf.train.CheckpointManager.save, []

    def save_then_ctrl_c(manager, *args, **kwargs):
        saved.append(save(manager, *args, **kwargs))
        raise KeyboardInterrupt  # As Ctrl-C lands once the first checkpoint is written.

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_ctrl_c)
    output = tmp_path / "out"
    argv = ["train", str(binary_csv), "--output", str(output), "--epochs", "2", "--units", "4", "--embedding-dim", "4",
            "--batch-size", "16", "--max-len", "6"]
    status = main(argv)
    captured = capsys.readouterr()
    assert (status, captured.out, captured.err.splitlines()[-1]) == (130, "", "textclf train: interrupted")
    assert len(saved) == 1 and (output / "runs" / ".in-progress" / "checkpoint" / "checkpoint").is_file()
    monkeypatch.undo()
    assert main(argv) == 0
    assert f"resuming the interrupted run in {output / 'runs' / '.in-progress'}" in capsys.readouterr().err


@pytest.fixture
def textclf_logger():
    """The ``textclf`` logger, its level restored after the test."""
    logger = logging.getLogger("textclf")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_log_writes_the_bare_message_and_a_level_silences_it(textclf_logger, capsys):
    assert (textclf_logger.name, textclf_logger.getEffectiveLevel()) == ("textclf", logging.INFO)
    log("12 training rows, 4 validation rows")
    log("warning: strategy 'mirrored' found no GPU")
    assert capsys.readouterr() == ("", "12 training rows, 4 validation rows\nwarning: strategy 'mirrored' found no GPU\n")
    textclf_logger.setLevel(logging.WARNING)  # How a program silences textclf's progress messages.
    log("12 training rows, 4 validation rows")
    log("warning: strategy 'mirrored' found no GPU")
    assert capsys.readouterr() == ("", "warning: strategy 'mirrored' found no GPU\n")


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert exit_of(capsys, "predict", "model", "text", "--quiet", "--verbose") == (
        2, "textclf predict: error: argument --verbose: not allowed with argument --quiet")


def test_quiet_shows_only_errors_for_the_command_alone(textclf_logger, monkeypatch, capsys):
    import warnings

    import textclf.cli

    def noisy(args):
        log("12 training rows, 4 validation rows")
        log("warning: strategy 'mirrored' found no GPU")
        warnings.warn("a library's deprecation")
        print("the result")

    monkeypatch.setitem(textclf.cli.COMMANDS, "predict", noisy)
    assert (main(["predict", "model", "text", "--quiet"]), capsys.readouterr()) == (0, ("the result\n", ""))
    assert textclf_logger.level == logging.INFO  # --quiet held for the command only.
    monkeypatch.setitem(textclf.cli.COMMANDS, "predict", lambda args: 1 / 0 if args.quiet else None)
    with pytest.raises(ZeroDivisionError):  # A bug keeps its traceback, quiet or not.
        main(["predict", "model", "text", "--quiet"])
    assert textclf_logger.level == logging.INFO


@pytest.mark.slow
def test_quiet_training_prints_its_result_and_no_progress(binary_csv, tmp_path, textclf_logger, capsys):
    status = main(["train", str(binary_csv), "--output", str(tmp_path / "out"), "--quiet", "--epochs", "2",
                   "--units", "4", "--embedding-dim", "4", "--batch-size", "16", "--max-len", "6"])
    captured = capsys.readouterr()
    assert (status, captured.err) == (0, "")
    assert json.loads(captured.out)["export"] == str(tmp_path / "out" / "1")
    assert textclf_logger.level == logging.INFO  # --quiet held for the command only.


def test_a_progress_bar_draws_nothing_while_progress_is_hidden(textclf_logger):
    import io

    from textclf.data.progress import ProgressBar

    textclf_logger.setLevel(logging.ERROR)  # As textclf --quiet sets it.
    stream = io.StringIO()
    bar = ProgressBar("counting a.csv", total=100, stream=stream)
    bar.update(50)
    bar.close()
    assert stream.getvalue() == ""


def test_the_metrics_tables_align_chinese_labels_by_terminal_columns():
    from textclf.evaluation.metrics import classification_metrics, format_metrics

    # A CJK character takes two terminal columns, a combining accent none; padding by characters misaligned both.
    long = "非常非常非常非常非常非常好"  # 26 columns: cut to 22 (23 would split a character) and 12.
    classes = ["好评", "差评", "cafe\u0301", long]
    true = ["好评"] * 3 + ["差评"] * 2 + ["cafe\u0301"] * 2 + [long]
    predicted = ["好评", "好评", "差评", "差评", "好评", "cafe\u0301", "cafe\u0301", long]
    assert format_metrics(classification_metrics(true, predicted, classes)).splitlines()[4:] == [
        "class                    precision    recall        f1   support",
        "好评                         0.667     0.667     0.667         3",
        "差评                         0.500     0.500     0.500         2",
        "cafe\u0301                         1.000     1.000     1.000         2",
        "非常非常非常非常非常非       1.000     1.000     1.000         1",
        "",
        "confusion matrix (rows: true, columns: predicted)",
        "                       好评         差评         cafe\u0301 非常非常非常",
        "好评                      2            1            0            0",
        "差评                      1            1            0            0",
        "cafe\u0301                      0            0            2            0",
        "非常非常非常              0            0            0            1",
    ]


@pytest.mark.slow
def test_the_python_api_imports_tensorflow_without_its_start_up_lines():
    import os
    import subprocess
    import sys

    from conftest import REPO

    script = "import textclf, tensorflow; print(tensorflow.constant(2).numpy() * 2)"
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                           env=environment)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "4\n", "")
    # TF_CPP_MIN_LOG_LEVEL=0 asks for every line: nothing is discarded.
    loud = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr


def test_an_export_logs_no_tensorflow_info_lines(binary_result, tmp_path):
    import tensorflow as tf

    from textclf import export_run

    class Records(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    records, tensorflow_logger = Records(), tf.get_logger()
    level = tensorflow_logger.level
    tensorflow_logger.addHandler(records)
    tensorflow_logger.setLevel(logging.INFO)  # As in Jupyter and IPython, where TensorFlow logs INFO.
    try:
        export_run(binary_result.run_dir, tmp_path / "base")
        assert (records.messages, tensorflow_logger.level) == ([], logging.INFO)
    finally:
        tensorflow_logger.removeHandler(records)
        tensorflow_logger.setLevel(level)
