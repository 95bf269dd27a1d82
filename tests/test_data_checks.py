"""Data checks before training (duplicates, conflicts, validation overlap, classes without validation rows) and
the training texts' hashes that `textclf evaluate` compares its rows with."""

import json

import numpy as np
import pytest

from textclf import TrainConfig
from textclf.data import fingerprints
from textclf.data import checks as checks_module
from textclf.data.checks import StreamChecks, check_in_memory
from textclf.data.dataset import Dataset, load_dataset
from textclf.data.fingerprints import FINGERPRINT_FILE, HashSet, text_hash, text_hashes
from textclf.training.prepare import prepare_in_memory, prepare_streamed

from conftest import tiny_config

# Line 1 is the header; the row at line 5 spans lines 5-6, so rows and lines part there.
TRAIN = ('text,label\n'
         'a fine warm film,pos\n'           # 2
         'a dull cold film,neg\n'           # 3
         'a fine warm film,pos\n'           # 4: repeats line 2
         '"a long\nslow film",neg\n'        # 5-6
         'so so film,pos\n'                 # 7
         'so so film,neg\n'                 # 8: line 7's text, another label
         '"a  fine warm film ",pos\n'       # 9: line 2's text, spaced otherwise
         'great acting,pos\n'               # 10
         'weak plot,neg\n'                  # 11
         'middling at best,meh\n')          # 12: the only row of its class
VALID = ('text,label\n'
         'great acting,pos\n'               # 2: training line 10
         'brand new words,pos\n'            # 3
         'weak plot,neg\n'                  # 4: training line 11
         'other new words,neg\n')           # 5
CLASSES = ["meh", "neg", "pos"]
DUPLICATES = [{"text": "a fine warm film", "lines": [2, 4, 9]}, {"text": "so so film", "lines": [7, 8]}]
CONFLICTS = [{"text": "so so film", "lines": [7, 8], "labels": ["pos", "neg"]}]


@pytest.fixture
def planted(tmp_path):
    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "valid.csv").write_text(VALID, encoding="utf-8")
    return tmp_path


def expected(folder, **changes):
    found = {"source": str(folder / "train.csv"), "rows": 10, "word": "line", "duplicates": DUPLICATES,
             "duplicate_rows": 3, "duplicate_texts": 2, "conflicts": CONFLICTS, "conflict_texts": 1,
             "valid_source": str(folder / "valid.csv"), "overlap": 2, "overlap_lines": [2, 4], "removed": 2,
             "kept_classes": [], "without_validation": [{"class": "meh", "training_rows": 1}], "streamed": False,
             "skipped": []}
    return {**found, **changes}


def test_rows_keep_their_line_numbers(planted):
    assert list(load_dataset(planted / "train.csv").lines) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    assert load_dataset(planted / "train.csv").subset([4, 3]).lines == [7, 5]


def test_a_validation_file_loses_the_rows_training_has(planted):
    data, valid = load_dataset(planted / "train.csv"), load_dataset(planted / "valid.csv")
    train_part, valid_part, checks, hashes, positions = check_in_memory(TrainConfig(), data, valid, None, CLASSES)
    assert checks.to_dict() == expected(planted)
    # The training file's 10 rows, then the kept rows of the validation file (its rows 1 and 3, lines 3 and 5).
    assert positions.tolist() == [*range(10), 11, 13]
    assert (train_part is data, valid_part.texts, valid_part.lines) == (True, ["brand new words", "other new words"],
                                                                        [3, 5])
    assert (hashes.rows, hashes.texts, hashes.sampled) == (10, 7, False)
    assert checks.summary() == "\n".join([
        f"warning: data checks of {planted / 'train.csv'} (10 rows):",
        "  duplicates: 3 rows repeat an earlier row's text (2 texts):",
        "    lines 2, 4 and 9: 'a fine warm film'",
        "    lines 7 and 8: 'so so film'",
        "  conflicts: 1 text with different labels:",
        "    lines 7 and 8 ('pos', 'neg'): 'so so film'",
        f"  validation rows repeating a training text: 2, removed (lines 2 and 4 of {planted / 'valid.csv'})",
        "  classes with no validation row: 'meh' (1 training row); nothing to validate them on (add rows of them, "
        "or pass --valid with rows of them)"])


def test_a_class_whose_every_validation_row_repeats_training_keeps_them(planted):
    data = load_dataset(planted / "train.csv")
    # Validation rows: line 4 (pos, repeats line 2), line 8 (neg, repeats line 7's text), line 11 (neg, new).
    train_part, valid_part, checks, _, positions = check_in_memory(TrainConfig(), data, None, ([0, 1, 3, 4, 6, 7, 9], [2, 5, 8]),
                                                        CLASSES)
    assert checks.to_dict() == expected(planted, valid_source=str(planted / "train.csv"), overlap_lines=[4, 8],
                                        removed=1, kept_classes=["pos"])
    assert (train_part.lines, valid_part.lines) == ([2, 3, 5, 7, 9, 10, 12], [4, 11])
    assert positions.tolist() == [0, 1, 3, 4, 6, 7, 9, 2, 8]  # The kept rows' places in the file, training first.
    assert checks.summary().splitlines()[6] == (
        f"  validation rows repeating a training text: 2, 1 removed (lines 4 and 8 of {planted / 'train.csv'}); 1 kept "
        "for 'pos', whose every validation row repeats one (nothing else to validate them on): their scores "
        "overstate the model")


def test_clean_data_gives_an_info_line_and_rows_in_memory_are_numbered(planted):
    data = Dataset(["a b", "c d", "a b", "e f"], ["x", "x", "x", "y"], "<fit>")
    _, valid_part, checks, _, _ = check_in_memory(TrainConfig(), data, None, ([0, 1, 3], [2]), ["x", "y"])
    assert (checks.overlap, checks.removed, valid_part.texts) == (1, 0, ["a b"])
    assert checks.summary() == "\n".join([
        "warning: data checks of <fit> (4 rows):",
        "  duplicates: 1 row repeats an earlier row's text (1 text):",
        "    rows 1 and 3: 'a b'",
        "  conflicts: none",
        "  validation rows repeating a training text: 1, 0 removed (row 3 of <fit>); 1 kept for 'x', whose every "
        "validation row repeats one (nothing else to validate them on): their scores overstate the model",
        "  classes with no validation row: 'y' (1 training row); nothing to validate them on (add rows of them, or "
        "pass --valid with rows of them)"])
    clean = Dataset(["a b", "c d", "e f", "g h"], ["x", "x", "y", "y"], "<fit>")
    assert check_in_memory(TrainConfig(), clean, None, ([0, 2], [1, 3]), ["x", "y"])[2].summary() == "\n".join([
        "data checks of <fit> (4 rows):", "  duplicates: none", "  conflicts: none",
        "  validation rows repeating a training text: none"])


def test_a_folder_per_class_names_the_files(tmp_path):
    for name, text in (("pos/a.txt", "same words"), ("pos/b.txt", "other words"), ("neg/c.txt", "same words")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    data = load_dataset(tmp_path)
    checks = check_in_memory(TrainConfig(), data, data, None, ["neg", "pos"])[2]
    assert checks.conflicts == [{"text": "same words", "lines": ["neg/c.txt", "pos/a.txt"], "labels": ["neg", "pos"]}]
    assert checks.summary().splitlines()[3:5] == ["  conflicts: 1 text with different labels:",
                                                  "    neg/c.txt and pos/a.txt ('neg', 'pos'): 'same words'"]


def test_multi_label_conflicts_compare_sets_of_labels():
    data = Dataset(["t", "t", "t", "u"], ["a|b", "b|a", "a", "b"], "<fit>")
    checks = check_in_memory(TrainConfig(multi_label=True), data, data, None, ["a", "b"])[2]
    assert checks.conflicts == [{"text": "t", "lines": [1, 2, 3], "labels": ["a|b", "a|b", "a"]}]


def test_training_logs_the_checks_and_keeps_them_in_run_info(planted, capsys):
    capsys.readouterr()
    prepared = prepare_in_memory(TrainConfig(), planted / "train.csv", planted / "valid.csv")
    assert prepared.run_info["data_checks"] == expected(planted)
    assert (prepared.train_count, prepared.valid_count, prepared.run_info["valid_rows"]) == (10, 2, 2)
    summary = check_in_memory(TrainConfig(), load_dataset(planted / "train.csv"), load_dataset(planted / "valid.csv"),
                              None, CLASSES)[2].summary()
    assert capsys.readouterr().err.splitlines()[:10] == summary.splitlines() + [
        "10 training rows, 2 validation rows, 3 labels (multiclass): meh, neg, pos"]


def test_streaming_checks_what_one_pass_affords(planted):
    prepared = prepare_streamed(TrainConfig(streaming="on"), planted / "train.csv", planted / "valid.csv")
    skipped = ["removing validation rows that repeat a training text (a streamed run reads them from the file each "
               "epoch): they are counted",
               "texts beside their line numbers, and equal hashes confirmed on the texts (a streamed run keeps no text)"]
    assert prepared.run_info["data_checks"] == expected(
        planted, duplicates=[{**item, "text": None} for item in DUPLICATES],
        conflicts=[{**item, "text": None} for item in CONFLICTS], removed=0, streamed=True, skipped=skipped)
    assert (prepared.valid_count, prepared.fingerprints.rows, prepared.fingerprints.texts) == (4, 10, 7)


def test_long_lists_are_cut_in_the_log_and_in_run_json(monkeypatch):
    monkeypatch.setattr(checks_module, "LISTED", 6)
    data = Dataset([f"text {index % 7}" for index in range(14)], ["x"] * 7 + ["y"] * 7, "<fit>")
    checks = check_in_memory(TrainConfig(), data, data, None, ["x", "y"])[2]
    assert (checks.duplicate_rows, checks.duplicate_texts, checks.conflict_texts) == (7, 7, 7)
    assert [item["lines"] for item in checks.duplicates] == [[index, index + 7] for index in range(1, 7)]
    assert len(checks.conflicts) == 6
    lines = checks.summary().splitlines()
    assert lines[1:8] == ["  duplicates: 7 rows repeat an earlier row's text (7 texts):",
                          *[f"    rows {index} and {index + 7}: 'text {index - 1}'" for index in range(1, 6)],
                          "    and 2 more (run.json's data_checks lists up to 6)"]


def test_a_streamed_run_checks_its_first_rows(monkeypatch):
    monkeypatch.setattr(checks_module, "STREAM_CHECKED_ROWS", 3)
    checks = StreamChecks(TrainConfig())
    for where, text, part in ((2, "a", 0), (3, "b", 1), (4, "a", 1), (5, "a", 0)):
        checks.add(where, text, "x", part)
    checks.add(2, "b", "x", StreamChecks.VALID_FILE)
    found = checks.report("train.csv", "valid.csv", ["x"], {"x": 2})
    assert (found.rows, found.duplicate_rows, found.overlap, found.overlap_lines) == (4, 1, 1, [4])
    assert found.skipped[2] == ("the 2 rows after the first 3, for duplicates, conflicts and validation overlap "
                                "(21 bytes a row)")
    assert (checks.fingerprints.rows, checks.fingerprints.texts) == (2, 1)  # Every training row has its hash.


def test_hashes_are_of_the_normalised_text_and_survive_a_file(tmp_path):
    assert text_hash(" a\u00a0fine\n film ") == text_hash("a fine film") != text_hash("A fine film")
    assert text_hash("caf\u00e9") == text_hash("cafe\u0301")  # NFC.
    known = HashSet()
    known.add(text_hashes(["one", "two", "one"]))
    (tmp_path / FINGERPRINT_FILE).write_text(known.to_json())
    loaded = HashSet.from_file(tmp_path / FINGERPRINT_FILE)
    assert (loaded.rows, loaded.texts, loaded.sampled) == (3, 2, False)
    assert loaded.count_in(text_hashes(["two", "three", "one", " one"])) == (3, False)
    assert fingerprints.trained_rows(tmp_path, ["one", "four"]) == (1, False)
    assert fingerprints.trained_rows(tmp_path / "missing", ["one"]) is None


def test_past_the_bound_the_smallest_hashes_are_a_sample(monkeypatch):
    monkeypatch.setattr(fingerprints, "MAX_HASHES", 8)
    texts = [f"text {index}" for index in range(100)]
    sample = HashSet()
    for start in range(0, 100, 10):
        sample.add(text_hashes(texts[start:start + 10]))
    assert sample.sampled and sample.rows == 100
    assert sample.hashes.tolist() == sorted(text_hashes(texts).tolist())[:8]
    # The 8 texts of the sample are exactly those of hashes up to its limit: 8 found of 8 in range, scaled to 100.
    assert sample.count_in(text_hashes(texts)) == (100, True)
    assert sample.count_in(text_hashes([f"new {index}" for index in range(50)])) == (0, True)


def test_a_damaged_hash_file_is_a_warning(tmp_path, capsys):
    (tmp_path / FINGERPRINT_FILE).write_text('{"format": "textclf-text-hashes-1"}')
    capsys.readouterr()
    assert fingerprints.trained_rows(tmp_path, ["one"]) is None
    assert capsys.readouterr().err == (
        f"warning: {tmp_path / FINGERPRINT_FILE} cannot be read (KeyError: 'hashes'); whether the rows are texts the "
        "model was trained on is not checked\n")


@pytest.mark.slow
def test_evaluate_warns_of_rows_the_model_was_trained_on(planted, capsys):
    from textclf import train
    from textclf.cli import main

    result = train(planted / "train.csv", tiny_config(epochs=1), valid=planted / "valid.csv",
                   output=planted / "model", verbose=0)
    run_info = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    assert run_info["data_checks"] == expected(planted)
    assert (result.export_dir / FINGERPRINT_FILE).read_text() == (result.run_dir / FINGERPRINT_FILE).read_text()
    (planted / "new.csv").write_text("text,label\nnever seen,pos\nnor this,neg\n", encoding="utf-8")
    for data, model, warning in (("train.csv", result.export_dir, "10 of 10 rows"),
                                 ("valid.csv", result.run_dir, "2 of 4 rows"), ("new.csv", result.export_dir, None)):
        capsys.readouterr()
        status = main(["evaluate", str(model), str(planted / data), "--output", str(planted / "report.json")])
        err = capsys.readouterr().err
        assert status == 0, err
        warnings = [line for line in err.splitlines() if line.startswith("warning:")]
        assert warnings == ([] if warning is None else [
            f"warning: {warning} of {planted / data} are texts the model was trained on; their scores overstate how "
            "it does on texts it has not seen"])
        report = json.loads((planted / "report.json").read_text())
        assert report["trained_rows"] == (int(warning.split()[0]) if warning else 0)
    assert np.array_equal(HashSet.from_file(result.run_dir / FINGERPRINT_FILE).hashes,
                          np.unique(text_hashes(load_dataset(planted / "train.csv").texts)))


def test_the_label_line_names_the_first_ten_labels_and_says_there_are_more():
    from textclf.training.prepare import _first_labels

    names = [f"c{number:02d}" for number in range(12)]
    assert _first_labels(names) == "c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, …"
    assert _first_labels(names[:10]) == "c00, c01, c02, c03, c04, c05, c06, c07, c08, c09"
