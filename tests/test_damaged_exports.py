"""Export and run folders a user or another tool changed: odd version folders, missing weights, edited JSON files.

Each case first reproduced the defect (a traceback, or a wrong label printed); each asserts the exit status and
the one line the user gets.
"""

import json
import os
import shutil

import pytest

from conftest import error_line, run_cli


def test_version_folders_are_named_by_ascii_digits_only(binary_result, tmp_path, capsys):
    # str.isdigit takes "²" (int() refuses it: a ValueError traceback) and "٣" (int() reads 3: export wrote 4).
    base = tmp_path / "base"
    shutil.copytree(binary_result.export_dir, base / "1")
    shutil.copytree(binary_result.export_dir, base / "٣")
    (base / "²").mkdir()
    (base / ".tmp-export-3-²").mkdir()  # Not a process id: left alone.
    status, out, err = run_cli(capsys, "predict", base, "great lovely film")
    assert (status, json.loads(out)["label"]) == (0, "fresh"), err
    status, out, err = run_cli(capsys, "check-export", base)
    assert (status, out.splitlines()[0]) == (0, f"{base / '1'}: servable — loaded with TF_LoadSessionFromSavedModel "
                                                "(TF Serving's C++ loader) and run with TF_SessionRun"), err
    status, out, err = run_cli(capsys, "export", binary_result.run_dir, "--output", base)
    assert (status, out) == (0, f"{base / '2'}\n"), err
    assert sorted(os.listdir(base)) == [".tmp-export-3-²", "1", "2", "²", "٣"]


@pytest.mark.parametrize("command, remove, problem", [
    ("predict", ["variables"], "its variables/ folder (the model's weights) is missing"),
    ("evaluate", ["variables/variables.index", "variables/variables.data-00000-of-00001"],
     "its variables/ folder (the model's weights) is empty"),
    ("predict", ["variables/variables.index"], 
     "variables/variables.index (the index of the model's weights) is missing"),
])
def test_an_export_without_its_weights_is_a_one_line_error(command, remove, problem, binary_result, binary_csv,
                                                          tmp_path, capsys):
    # TF Serving's loader skips the restore without variables.index: the first run raised a ServingError traceback.
    copy = tmp_path / "copy" / "1"
    shutil.copytree(binary_result.export_dir, copy)
    for name in remove:
        if (copy / name).is_dir():
            shutil.rmtree(copy / name)
        else:
            (copy / name).unlink()
    status, out, err = run_cli(capsys, command, copy.parent, "great film" if command == "predict" else binary_csv)
    assert (status, out) == (2, "")
    assert error_line(err) == (f"textclf {command}: error: {copy} is an incomplete export: {problem}; export the run "
                               "again with `textclf export RUN --output BASE`")


def _input_tensor_renamed(metadata):
    signatures = dict(metadata["signatures"])
    signatures["serving_default"] = [{"text": "no_such_op:0"}, signatures["serving_default"][1]]
    return {**metadata, "signatures": signatures}


def _without(key):
    return lambda content: {name: value for name, value in content.items() if name != key}


def _tokenizer_without(key):
    return lambda content: {**content, "config": {name: value for name, value in content["config"].items()
                                                  if name != key}}


# (id, folder, file, edit, the error after "textclf predict: error: "): each was a KeyError, TypeError or IndexError
# traceback, or (three classes) a wrong label printed.
EDITS = [
    ("export-empty", "export", "textclf.json", lambda _: {},
     "{file} must be a JSON object with `classes` and `config`. Received: an object without `classes`"),
    ("export-list", "export", "textclf.json", lambda _: [],
     "{file} must be a JSON object with `classes` and `config`. Received: []"),
    ("export-no-config", "export", "textclf.json", _without("config"),
     "{file} must be a JSON object with `classes` and `config`. Received: an object without `config`"),
    ("export-one-class", "export", "textclf.json", lambda content: {**content, "classes": ["fresh"]},
     "`classes` in {file} must be a list of at least 2 distinct class names (strings). Received: classes=[\"fresh\"]"),
    ("export-integer-classes", "export", "textclf.json", lambda content: {**content, "classes": [0, 1]},
     "`classes` in {file} must be a list of at least 2 distinct class names (strings). Received: classes=[0, 1]"),
    ("export-three-classes", "export", "textclf.json",
     lambda content: {**content, "classes": ["fresh", "rotten", "meh"]},
     "`classes` in {file} must list the model's 2 classes (its output has 2 columns). Received: 3 classes, "
     "classes=[\"fresh\", \"rotten\", \"meh\"]"),
    ("export-signature-names", "export", "textclf.json",
     lambda content: {**content, "signatures": {"predict": [{"text": "text:0"}, {"scores": "scores:0"}]}},
     "`signatures` in {file} must be an object with serving_default and tokenize, as `textclf export` writes it. "
     "Received: signatures={{\"predict\": [{{\"text\": \"text:0\"}}, {{\"scores\": \"scores:0\"}}]}}"),
    ("export-tensor-not-in-graph", "export", "textclf.json", _input_tensor_renamed,
     "`signatures` in {file} names tensors the SavedModel's graph does not have: no_such_op:0; export the run again "
     "with `textclf export RUN --output BASE`"),
    ("export-bad-setting", "export", "textclf.json",
     lambda content: {**content, "config": {**content["config"], "max_len": 0}},
     "{file}: `max_len` must be a positive integer. Received: max_len=0"),
    ("labels-empty", "run", "labels.json", lambda _: {},
     "{file} must be a JSON object with `classes`. Received: an object without `classes`"),
    ("labels-three-classes", "run", "labels.json", lambda _: {"classes": ["fresh", "rotten", "meh"]},
     "`classes` in {file} must list the model's 2 classes (its output has 1 column). Received: 3 classes, "
     "classes=[\"fresh\", \"rotten\", \"meh\"]"),
    ("tokenizer-list", "run", "tokenizer.json", lambda _: [],
     "{file} must be a JSON object with `config`. Received: []"),
    ("tokenizer-no-word-index", "run", "tokenizer.json", _tokenizer_without("word_index"),
     "`config` in {file} must hold the tokenizer's fitted state. Received: no `word_index`"),
    ("tokenizer-counts-not-json", "run", "tokenizer.json",
     lambda content: {**content, "config": {**content["config"], "word_counts": {"film": 3}}},
     "`config.word_counts` in {file} must be a JSON string holding an object of words to counts. "
     "Received: word_counts={{\"film\": 3}}"),
]


@pytest.mark.parametrize("folder, name, edit, message", [case[1:] for case in EDITS], ids=[case[0] for case in EDITS])
def test_a_hand_edited_json_file_is_a_one_line_error_naming_the_file_and_key(folder, name, edit, message,
                                                                           binary_result, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(binary_result.export_dir if folder == "export" else binary_result.run_dir, copy)
    (copy / name).write_text(json.dumps(edit(json.loads((copy / name).read_text()))))
    status, out, err = run_cli(capsys, "predict", copy, "great lovely film")
    assert (status, out) == (2, ""), err
    assert error_line(err) == "textclf predict: error: " + message.format(file=copy / name)
