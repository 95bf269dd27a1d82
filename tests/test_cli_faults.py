"""Faults a user meets: bad settings and files, full disks, broken pipes, failed pictures, diverging runs.

Each case first reproduced the defect (a traceback, a lost model, a wrong
count); each asserts the one-line message, the exit status and what is left on disk.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from textclf.cli import main

from conftest import NEGATIVE, POSITIVE, REPO, TINY, error_line, make_rows, run_cli, write_csv



@pytest.mark.parametrize("flags, message", [
    (["--learning-rate", "inf"],
     "argument --learning-rate: `learning_rate` must be a finite number in (0.0, inf). Received: learning_rate=inf"),
    (["--clipnorm", "nan"], "argument --clipnorm: `clipnorm` must be a finite number in (0.0, inf). Received: "
                            "clipnorm=nan"),
    (["--validation-fraction", "0"],
     "`validation_fraction` must be > 0 when no validation file is given (early stopping and the metrics need "
     "validation rows). Received: validation_fraction=0.0; pass a fraction such as 0.2, or --valid FILE"),
    # It trained the whole run, then the export failed: "Dimension -727379968 must be >= 0".
    (["--max-len", "1000000000000"], "argument --max-len: `max_len` must be at most 1,000,000 tokens (the export's "
                                     "int32 ids are [batch, max_len]). Received: max_len=1000000000000"),
])
def test_settings_that_cannot_train_are_refused_before_training(flags, message, binary_csv, tmp_path, capsys):
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", tmp_path / "out", *TINY, *flags)
    assert (status, error_line(err)) == (2, f"textclf train: error: {message}")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("saved_model.pb"))


@pytest.mark.slow
def test_a_diverging_run_stops_exports_nothing_and_leaves_nothing_to_resume(multiclass_csv, tmp_path, capsys):
    output = tmp_path / "out"
    status, out, err = run_cli(capsys, "train", multiclass_csv, "--output", output, *TINY, "--learning-rate", "1e30",
                               "--clipnorm", "1e30")
    assert status == 2
    line = error_line(err)  # The loss is nan or beyond DIVERGED_LOSS, by the platform's arithmetic.
    assert line.startswith("textclf train: error: The loss became ") and line.endswith(
        " in epoch 1 at learning rate 1e+30: training diverged, and nothing was saved or exported. Lower "
        "--learning-rate (or --clipnorm) and train again")
    assert sorted(os.listdir(output / "runs")) == []  # No run folder, no .in-progress.
    # The corrected command needs no --restart.
    status, out, err = run_cli(capsys, "train", multiclass_csv, "--output", output, *TINY)
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["export"] == str(output / "1")


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_to_resume(binary_csv, tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0.1 0.2 0.3\nbad 0.3 0.2 0.1\n", encoding="utf-8")
    output = tmp_path / "out"
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", output, *TINY, "--embeddings", vectors)
    assert status == 2 and "dimension" in error_line(err)
    assert os.listdir(output / "runs") == []
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", output, *TINY, "--embeddings", vectors,
                               "--embedding-dim", "3")
    assert status == 0, err


@pytest.mark.slow
def test_a_picture_that_fails_is_a_warning_and_the_run_and_export_are_kept(binary_csv, tmp_path, capsys, monkeypatch):
    import textclf.training.run

    def broken(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'matplotlib'")

    monkeypatch.setattr(textclf.training.run, "plot_history", broken)
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", tmp_path / "out", *TINY)
    assert status == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["export"] == str(tmp_path / "out" / "1")
    assert ("warning: history.png was not drawn (ModuleNotFoundError: No module named 'matplotlib'); the run is "
            "saved without it") in err
    assert sorted(os.listdir(summary["run"])) == ["config.json", "confusion_matrix.png", "history.json",
                                                  "labels.json", "metrics.json", "model.keras", "run.json",
                                                  "tokenizer.json", "training_texts.json",
                                                  "validation_predictions.jsonl"]


def test_files_and_folders_that_cannot_be_written_or_read_are_one_line_errors(binary_csv, binary_result, tmp_path,
                                                                             capsys):
    export = binary_result.export_dir.parent
    status, out, err = run_cli(capsys, "evaluate", export, binary_csv, "--output", tmp_path / "missing" / "r.json")
    assert (status, out, error_line(err)) == (
        2, "", f"textclf evaluate: error: argument --output: folder {tmp_path / 'missing'} does not exist; create it "
        f"or choose another. Received: --output {tmp_path / 'missing' / 'r.json'}")
    status, out, err = run_cli(capsys, "evaluate", export, binary_csv, "--output", "/dev/full")
    assert (status, error_line(err)) == (2, "textclf evaluate: error: No space left on device")
    (tmp_path / "a-file").write_text("not a folder")
    status, out, err = run_cli(capsys, "export", binary_result.run_dir, "--output", tmp_path / "a-file" / "base")
    assert (status, error_line(err)) == (2, f"textclf export: error: Not a directory: {tmp_path / 'a-file' / 'base'}")


@pytest.mark.parametrize("content", [b"", b"\x08\x01\x12\x03abc"])
def test_a_damaged_saved_model_is_a_one_line_error(binary_result, tmp_path, capsys, content):
    import shutil

    copy = tmp_path / "copy" / "1"
    shutil.copytree(binary_result.export_dir, copy)
    (copy / "saved_model.pb").write_bytes(content)
    status, out, err = run_cli(capsys, "predict", copy, "great film")
    assert status == 2
    assert error_line(err).startswith(f"textclf predict: error: {copy} cannot be loaded as a SavedModel (damaged or "
                                      "incomplete: ")
    assert error_line(err).endswith("export the run again with `textclf export RUN --output BASE`")
    # In a fresh process TensorFlow's library starts up (CUDA probing, absl) as it loads: the user still gets
    # one line, not those too.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "textclf.cli", "predict", str(copy), "great film"],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1)
    assert done.stderr.startswith(f"textclf predict: error: {copy} cannot be loaded as a SavedModel")
    status, out, err = run_cli(capsys, "check-export", copy)
    assert status == 2 and f"textclf check-export: error: {copy} would not serve in TF Serving's C++ loader: " in err


def test_predict_options_may_come_between_the_model_and_the_texts(binary_result, capsys):
    export = binary_result.export_dir.parent
    status, out, err = run_cli(capsys, "predict", export, "--top-k", "1", "great film", "dull plot")
    assert status == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == ["great film", "dull plot"]
    assert [len(line["top_k"]) for line in lines] == [1, 1]
    with pytest.raises(SystemExit) as exit_info:  # An unknown flag among them is still refused.
        main(["predict", str(export), "--top-k", "1", "great film", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert error_line(capsys.readouterr().err) == "textclf: error: unrecognized arguments: great film --no-such-flag"


def test_predict_input_keeps_one_output_per_line_whatever_the_line_holds(binary_result, tmp_path, capsys):
    texts = ["a great\u2028film", "dull\x0cplot\x85here", "lovely\u2029movie\x1c\x1d\x1e end"]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    status, out, err = run_cli(capsys, "predict", binary_result.export_dir.parent, "--input", source)
    assert status == 0, err
    # One JSON object per "\n" (JSON keeps U+2028 raw; str.splitlines would cut there).
    assert [json.loads(line)["text"] for line in out.rstrip("\n").split("\n")] == texts


def test_a_txt_file_of_fasttext_lines_trains_as_fasttext(tmp_path, capsys):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 40, seed=5)
    source = tmp_path / "reviews.txt"
    source.write_text("".join(f"__label__{label} {text}\n" for text, label in rows), encoding="utf-8")
    status, out, err = run_cli(capsys, "train", source, "--output", tmp_path / "out", *TINY)
    assert status == 0, err
    assert "32 training rows, 8 validation rows, 2 labels (binary): fresh, rotten" in err


def test_an_unknown_column_among_many_lists_the_first_twenty_and_a_count(tmp_path, capsys):
    source = write_csv(tmp_path / "wide.csv", [["x"] * 100_000], header=[f"c{index}" for index in range(100_000)])
    status, out, err = run_cli(capsys, "train", source)
    assert status == 2
    assert error_line(err) == (
        f"textclf train: error: Column 'text' not found in {source}; its columns are: "
        + ", ".join(f"'c{index}'" for index in range(20))
        + ", ... (100000 columns in all). Choose one with --text-column.")


def test_a_stale_staging_folder_of_a_killed_export_is_removed(binary_result, tmp_path, capsys):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(binary_result.export_dir, base / "1")
    dead = base / ".tmp-export-2-4194305"  # Above Linux's largest PID: no such process.
    alive = base / f".tmp-export-2-{os.getppid()}"
    for folder in (dead, alive):
        (folder / "variables").mkdir(parents=True)
    status, out, err = run_cli(capsys, "export", binary_result.run_dir, "--output", base)
    assert status == 0, err
    assert sorted(os.listdir(base)) == [alive.name, "1", "2"]


def test_explain_prints_no_colour_codes_into_a_pipe_or_file(binary_result, capsys):
    status, out, err = run_cli(capsys, "explain", binary_result.export_dir.parent, "great lovely film")
    assert status == 0, err
    assert "\033[" not in out
    assert out.splitlines()[0].endswith("great lovely film")


def test_every_setting_help_is_whole(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0  # Help asked for is no error.
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("usage: textclf train [-h] ")
    help_text = " ".join(captured.out.split())
    assert ("only the embedding rows of the words in each batch: faster per step on a CPU, but lower validation "
            "macro-F1 in docs/PERFORMANCE.md). ['adam']") in help_text
    assert ("(0, the default: at epoch ends only). textclf train checkpoints every run at epoch ends, so rerunning "
            "the same command after a crash resumes from the last checkpoint. [0]") in help_text


def test_a_huge_max_len_costs_only_the_longest_text(binary_result):
    from textclf.model.factory import predict_probabilities
    from textclf.serve.predict import RunClassifier
    from textclf.text.sequences import encode

    run = RunClassifier(binary_result.run_dir).run
    texts = ["great lovely film", "dull", "a film was a film"]
    trimmed = encode(run.tokenizer, texts, 1_000_000, "post", "pre", trim=True)
    assert trimmed.shape == (3, 5)
    full = encode(run.tokenizer, texts, 12, "pre", "pre")
    np.testing.assert_allclose(predict_probabilities(run.model, full, texts),
                               predict_probabilities(run.model, trimmed, texts), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_the_command_line_is_quiet_and_a_closed_pipe_ends_it_quietly(binary_result, tmp_path):
    source = tmp_path / "many.txt"
    source.write_text("great film\n" * 5000, encoding="utf-8")
    command = (f"{sys.executable} -m textclf.cli predict {binary_result.export_dir.parent} --input {source} "
               "--batch-size 100 | head -1")
    process = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=REPO, timeout=300,
                             env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"})
    assert json.loads(process.stdout)["text"] == "great film"
    assert process.stderr == ""  # Neither TensorFlow's start-up lines nor a BrokenPipeError traceback.


def test_macro_f1_averages_over_the_classes_that_occur():
    from textclf.evaluation.metrics import classification_metrics, classification_metrics_of_indices

    # "c" has no validation row and is never predicted: it is not a class with F1 0.
    assert classification_metrics(["a", "a", "b"], ["a", "a", "b"], ["a", "b", "c"])["macro_f1"] == 1.0
    assert classification_metrics_of_indices([0, 0, 1], [0, 0, 1], ["a", "b", "c"])["macro_f1"] == 1.0
    # Predicted without a true row: F1 0 counts (a false positive is an error).
    assert classification_metrics(["a", "a"], ["a", "c"], ["a", "b", "c"])["macro_f1"] == pytest.approx((2 / 3) / 2)
