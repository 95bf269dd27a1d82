"""Export and run folders a user or another tool changed: odd version folders, missing weights, edited JSON files.

Each case first reproduced the defect (a traceback, or a wrong label printed); each asserts the exit status and
the one line the user gets.
"""

import json
import os
import shutil

import pytest

from textclf.cli import main


def run_cli(capsys, *argv):
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def error_line(err):
    return err.strip().splitlines()[-1]


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
