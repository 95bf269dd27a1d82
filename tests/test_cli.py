"""The textclf command end to end on tiny data, and every bad-input case (exit status 2)."""

import json
import os

import numpy as np
import pytest

from textclf import load
from textclf.cli import main

from conftest import NEGATIVE, POSITIVE, TINY, make_rows, run_cli, write_csv



def test_train_predict_evaluate_on_a_binary_csv(binary_csv, tmp_path, capsys):
    output = tmp_path / "reviews"
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", output, *TINY, "--arch", "lstm")
    assert status == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["export"] == str(output / "1")
    run_dir = output / "runs" / os.listdir(output / "runs")[0]
    assert sorted(os.listdir(run_dir)) == ["config.json", "confusion_matrix.png", "history.json", "history.png",
                                           "labels.json", "metrics.json", "model.keras", "run.json", "tokenizer.json",
                                           "training_texts.json", "validation_predictions.jsonl"]
    assert_picture(run_dir / "history.png", min_width=800)
    assert_picture(run_dir / "confusion_matrix.png", min_width=400)
    assert json.loads((run_dir / "labels.json").read_text()) == {"classes": ["fresh", "rotten"], "task": "binary"}
    run_info = json.loads((run_dir / "run.json").read_text())
    # Where the command's time went, export included; the epochs' share is what the loop timed.
    assert list(run_info["seconds"]) == ["startup", "reading_and_vocabulary", "encoding", "building_and_tracing",
                                         "epochs", "validation", "wide", "metrics", "run_folder", "export"]
    seconds = run_info["seconds"]
    assert all(isinstance(value, float) and value >= 0 for value in seconds.values())
    # Building, the epochs and validation split the training seconds (each rounded to 0.01); both epochs ran.
    assert run_info["training_seconds"] == pytest.approx(
        seconds["building_and_tracing"] + seconds["epochs"] + seconds["validation"], abs=0.021)
    assert run_info["epochs_run"] == 2
    # The settings the run decided (max_len was given, so it is not among them).
    assert run_info["resolved"] == {"split_mode": {"requested": "auto", "used": "word"},
                                    "wide": {"requested": "auto", "used": "tfidf"},
                                    "streaming": {"requested": "auto", "used": "off"}}
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["arch"], config["epochs"], config["max_len"], config["units"]) == ("lstm", 2, 6, 4)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"accuracy", "macro_f1", "report", "confusion_matrix"}
    assert np.sum(metrics["confusion_matrix"]) == 16  # 20% of 80 rows held out, stratified.
    assert "16 validation rows" in err

    status, out, err = run_cli(capsys, "predict", output, "great lovely film", "", "?!", "--top-k", "1")
    assert status == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == ["great lovely film", "", "?!"]
    expected = load(run_dir).predict(["great lovely film", "", "?!"])  # Python tokenizer and Keras model.
    assert [line["label"] for line in lines] == [prediction.label for prediction in expected]
    assert [line["score"] for line in lines] == pytest.approx([prediction.score for prediction in expected], abs=2e-6)
    assert [len(line["top_k"]) for line in lines] == [1, 1, 1]
    assert lines[1]["score"] == lines[2]["score"]  # Empty and punctuation-only texts are both [OOV].

    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("great lovely film\n\nawful dull plot\n", encoding="utf-8")
    status, out, err = run_cli(capsys, "predict", output, "--input", texts_file, "--format", "csv")
    assert status == 0, err
    rows = out.splitlines()
    assert rows[0] == "text,label,score,score_fresh,score_rotten"
    assert [row.split(",")[0] for row in rows[1:]] == ["great lovely film", "awful dull plot"]

    report = tmp_path / "report.json"
    status, out, err = run_cli(capsys, "evaluate", output, binary_csv, "--output", report)
    assert status == 0, err
    assert "macro-F1" in out and "confusion matrix" in out
    written = json.loads(report.read_text())
    assert written["support"] == 80 and np.sum(written["confusion_matrix"]) == 80
    assert_picture(tmp_path / "confusion_matrix.png", min_width=400)
    status, out, err = run_cli(capsys, "evaluate", output, binary_csv, "--plot", tmp_path / "shares.png", "--normalize")
    assert status == 0, err
    assert_picture(tmp_path / "shares.png", min_width=400)


def test_predict_reads_a_file_batch_by_batch_in_order(binary_result, tmp_path, capsys):
    from textclf.data.dataset import text_batches

    export = binary_result.export_dir.parent
    texts = ["great lovely film", "awful dull plot", "a film", "lovely", "dull"]
    texts_file = tmp_path / "texts.csv"
    write_csv(texts_file, [(text, "") for text in texts[:2]] + [("", "")] + [(text, "") for text in texts[2:]])
    assert list(text_batches(texts_file, 2)) == [texts[:2], texts[2:4], texts[4:]]  # The empty row is skipped.
    assert list(text_batches(texts_file, 5)) == [texts]
    with pytest.raises(ValueError, match=r"^`batch_size` must be a positive integer. Received: batch_size=0$"):
        list(text_batches(texts_file, 0))

    status, streamed, err = run_cli(capsys, "predict", export, "--input", texts_file, "--batch-size", "2")
    assert status == 0, err
    status, whole, err = run_cli(capsys, "predict", export, *texts)
    assert status == 0, err
    assert streamed == whole and len(whole.splitlines()) == 5


def assert_picture(path, min_width):
    """A real PNG of a sensible size, not blank."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min_width <= image.width <= 4000 and 300 <= image.height <= 4000
        colours = image.convert("L").getextrema()
        assert colours[1] - colours[0] > 100  # Has drawn content, not a flat image.


def test_config_file_is_overridden_by_flags(binary_csv, tmp_path, capsys):
    config_file = tmp_path / "settings.json"
    config_file.write_text(json.dumps({"arch": "gru", "units": 3, "epochs": 1, "embedding_dim": 4, "max_len": 5}))
    output = tmp_path / "configured"
    status, out, err = run_cli(capsys, "train", binary_csv, "--config", config_file, "--units", "5", "--output", output)
    assert status == 0, err
    run_dir = output / "runs" / os.listdir(output / "runs")[0]
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["arch"], config["units"], config["epochs"], config["max_len"]) == ("gru", 5, 1, 5)


@pytest.mark.slow
def test_same_seed_gives_identical_weights(binary_csv, tmp_path, capsys):
    weights = []
    for attempt in range(2):
        output = tmp_path / f"seeded{attempt}"
        status, _, err = run_cli(capsys, "train", binary_csv, "--output", output, *TINY, "--seed", "3")
        assert status == 0, err
        run_dir = output / "runs" / os.listdir(output / "runs")[0]
        weights.append(load(run_dir).run.model.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_a_class_with_one_example_still_splits(tmp_path, capsys):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 30, seed=5) + [("a lonely odd sentence", "other")]
    data = write_csv(tmp_path / "odd.csv", rows)
    status, out, err = run_cli(capsys, "train", data, "--output", tmp_path / "odd", *TINY)
    assert status == 0, err
    assert "3 labels (multiclass)" in err


@pytest.mark.slow
def test_dropped_rows_are_reported(tmp_path, capsys):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 30, seed=6) + [("", "fresh"), ("no label", "")]
    data = write_csv(tmp_path / "holes.csv", rows)
    status, out, err = run_cli(capsys, "train", data, "--output", tmp_path / "holes", *TINY)
    assert status == 0, err
    assert "dropped 2 rows with empty or missing text or label (lines 32, 33)" in err


def test_export_adds_a_version_and_never_touches_existing_ones(binary_result, tmp_path, capsys):
    base = binary_result.export_dir.parent
    first = {path: path.read_bytes() for path in binary_result.export_dir.rglob("*") if path.is_file()}
    status, out, err = run_cli(capsys, "export", binary_result.run_dir, "--output", base)
    assert status == 0, err
    assert out.strip() == str(base / "2")
    assert {path: path.read_bytes() for path in binary_result.export_dir.rglob("*") if path.is_file()} == first
    assert not [name for name in os.listdir(base) if name.startswith(".tmp")]
    assert load(base).path == base / "2"
    assert load(base / "1").path == base / "1"


@pytest.mark.parametrize("argv, message", [
    (["train", "{tmp}/missing.csv"], "Data file not found: {tmp}/missing.csv"),
    (["train", "{binary}", "--text-column", "review"],
     "Column 'review' not found in {binary}; its columns are: 'text', 'label'. Choose one with --text-column."),
    (["train", "{binary}", "--max-len", "0"], "argument --max-len: `max_len` must be a positive integer. Received: max_len=0"),
    (["train", "{binary}", "--epochs", "0"], "argument --epochs: `epochs` must be a positive integer. Received: epochs=0"),
    (["train", "{single}"], "training needs at least two different labels; found only 'fresh'"),
    (["train", "{empty}"], "{empty} has no usable rows"),
    (["train", "{binary}", "--config", "{tmp}/nope.json"], "Config file not found: {tmp}/nope.json"),
    (["predict", "{tmp}", "hello"], "{tmp} is not a textclf export"),
    (["predict", "{tmp}/absent", "hello"], "Model folder not found: {tmp}/absent"),
    (["predict", "{export}"], "Nothing to classify: give one or more TEXT arguments or --input FILE"),
    (["predict", "{export}", "--input", "{empty}"], "{empty} has no usable rows"),
    (["predict", "{export}", "hi", "--top-k", "0"], "argument --top-k: must be a positive integer. Received: 0"),
    (["export", "{tmp}", "--output", "{tmp}/out"], "{tmp} is not a textclf run folder (missing config.json"),
    (["evaluate", "{export}", "{other_labels}"], "labels 'maybe' are not among the model's classes ('fresh', 'rotten')"),
])
def test_bad_input_exits_2_with_a_message(argv, message, binary_csv, binary_result, tmp_path, capsys):
    names = {
        "tmp": tmp_path, "binary": binary_csv, "export": binary_result.export_dir.parent,
        "single": write_csv(tmp_path / "single.csv", [("good film", "fresh"), ("fine film", "fresh")]),
        "empty": write_csv(tmp_path / "empty.csv", []),
        "other_labels": write_csv(tmp_path / "other.csv", [("good film", "fresh"), ("hmm", "maybe")]),
    }
    status, out, err = run_cli(capsys, *[arg.format(**names) for arg in argv])
    assert status == 2
    assert message.format(**names) in err
    assert err.startswith(f"textclf {argv[0]}: error: ")


def test_optional_number_flags_take_none():
    from textclf.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["train", "x.csv", "--threshold", "none"]).threshold is None
    assert parse(["train", "x.csv", "--threshold", "0.25"]).threshold == 0.25
    assert parse(["train", "x.csv", "--max-len", "auto"]).max_len is None
    assert parse(["train", "x.csv", "--max-len", "40"]).max_len == 40


def test_unknown_arch_is_an_argparse_error(binary_csv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(binary_csv), "--arch", "transformer"])
    assert exit_info.value.code == 2
    assert "argument --arch: invalid choice: 'transformer'" in capsys.readouterr().err


@pytest.mark.slow
def test_mixed_precision_trains_and_exports_a_float32_model_the_cpp_loader_serves(binary_csv, tmp_path, capsys):
    import tensorflow as tf

    from textclf.serve.artifacts import load_run
    from textclf.serve.export import _inference_model
    from textclf.model.factory import predict_probabilities, wide_of
    from textclf.text.sequences import encode
    from textclf.serve.check import ServingSession

    output = tmp_path / "mixed"
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", output, *TINY, "--mixed-precision")
    assert status == 0, err
    policy = "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
    assert f"mixed precision: {policy}" in err
    loaded = tf.saved_model.load(str(output / "1"))
    run = load_run(json.loads(out.strip().splitlines()[-1])["run"])
    # Every float variable is float32 (none float16/bfloat16); the int64 ones are the wide branch's n-gram keys, one
    # vector per analyzer.
    assert {v.dtype for v in loaded.served_variables} == {tf.float32, tf.int64}
    assert [v.shape.rank for v in loaded.served_variables if v.dtype == tf.int64] == [1] * len(wide_of(run.model)[0])
    texts = ["great film", "", "awful dull plot!", "x " * 300]
    python = loaded.signatures["serving_default"](text=tf.constant(texts))
    with ServingSession(output / "1") as session:
        served = session.run("serving_default", texts)
    keras_float32 = predict_probabilities(_inference_model(run), encode(run.tokenizer, texts, 6, "post", "pre"), texts)
    assert served["scores"].dtype == np.float32
    assert served["label"].tolist() == python["label"].numpy().tolist()
    np.testing.assert_allclose(served["scores"], python["scores"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(served["scores"], keras_float32, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_tensorboard_logs_are_written(binary_csv, tmp_path, capsys):
    logs = tmp_path / "logs"
    status, out, err = run_cli(capsys, "train", binary_csv, "--output", tmp_path / "tb", *TINY, "--tensorboard", logs)
    assert status == 0, err
    events = [path for path in logs.rglob("events.out.tfevents.*")]
    assert {path.parent.name for path in events} >= {"train", "validation"}


def test_predict_csv_output_reads_back_as_the_texts_given_line_breaks_and_quotes_included(binary_result, tmp_path,
                                                                                          capsys):
    import csv

    texts = ["dull\rgood", "a, \"fine\" film\nreally", "plain", "tab\there", "\r\n"]
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts), encoding="utf-8")
    status, out, err = run_cli(capsys, "predict", binary_result.export_dir, "--input", source, "--format", "csv")
    assert status == 0, err
    # Rows end in "\n" alone; a field holding "\r" is quoted as one holding "\n" is.
    assert out.startswith("text,label,score,score_fresh,score_rotten\n") and '"dull\rgood",' in out
    rows = list(csv.reader(out.splitlines(keepends=True)))
    assert [row[0] for row in rows[1:]] == texts[:4]  # A text of line breaks only is empty: not classified.


def test_predict_names_input_format_in_its_unknown_format_message(binary_result, tmp_path, capsys):
    (tmp_path / "texts.txt").write_text("a film\n", encoding="utf-8")
    status, out, err = run_cli(capsys, "predict", binary_result.export_dir, "--input", tmp_path / "texts.txt",
                               "--input-format", "text")
    assert (status, out) == (2, "")
    assert err == (f"textclf predict: error: Unknown format 'text' for {tmp_path / 'texts.txt'}; expected one of csv, "
                   "tsv, jsonl, parquet, fasttext, folder, lines (--input-format)\n")


def test_a_multilabel_confusion_picture_has_one_matrix_per_class(tmp_path):
    from PIL import Image

    from textclf.evaluation.reports import plot_multilabel_confusion

    # 5 classes: a row of 4 matrices and one of 1, 320 x 300 pixels each at 100 dpi.
    matrices = [[[10, 2], [3, 5]], [[8, 0], [0, 12]], [[0, 0], [0, 0]], [[1, 1], [1, 17]], [[20, 0], [0, 0]]]
    path = plot_multilabel_confusion(matrices, ["a", "b", "c", "d", "e"], tmp_path / "per_class.png")
    assert path == tmp_path / "per_class.png"
    with Image.open(path) as image:
        assert image.size == (1280, 600)
    assert_picture(path, min_width=1280)
    plot_multilabel_confusion(matrices[:1], ["a"], tmp_path / "one.png", normalize=True)
    with Image.open(tmp_path / "one.png") as image:
        assert image.size == (320, 300)


def test_a_text_argument_that_is_not_utf8_is_named(binary_result, capsys):
    # The shell's bytes b"caf\xe9" reach Python as "caf\udce9" (os.fsdecode's surrogate escape).
    status, out, err = run_cli(capsys, "predict", binary_result.export_dir, "fine", os.fsdecode(b"caf\xe9"))
    assert (status, out) == (2, "")
    assert err == ("textclf predict: error: TEXT argument 2 is not valid UTF-8 (b'caf\\xe9'); give the text in UTF-8, "
                   "or put it in a file and pass --input FILE --encoding NAME\n")
