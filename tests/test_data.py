"""Loading CSV/TSV/JSONL, the errors bad files get, and the stratified split."""

import os

import numpy as np
import pytest

from textclf import load_dataset
from textclf.data.dataset import sorted_classes, stratified_split


def test_csv_tsv_and_jsonl_read_the_same_rows(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"Hello, world",pos\nBye,neg\n', encoding="utf-8")
    (tmp_path / "a.tsv").write_text("text\tlabel\nHello, world\tpos\nBye\tneg\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"text": "Hello, world", "label": "pos"}\n\n{"text": "Bye", "label": "neg"}\n')
    for name in ("a.csv", "a.tsv", "a.jsonl"):
        data = load_dataset(tmp_path / name)
        assert (data.texts, data.labels) == (["Hello, world", "Bye"], ["pos", "neg"])


def test_utf8_bom_and_multiline_csv_fields(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufefftext,label\n"line one\nline two",x\n'.encode("utf-8"))
    data = load_dataset(path)
    assert (data.texts, data.labels) == (["line one\nline two"], ["x"])


def test_integer_labels_in_jsonl_become_strings_sorted_numerically(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"text": "a", "label": 10}\n{"text": "b", "label": 9}\n{"text": "c", "label": 9}\n')
    data = load_dataset(path)
    assert data.labels == ["10", "9", "9"]
    assert sorted_classes(data.labels) == ["9", "10"]


def test_rows_with_empty_or_missing_text_or_label_are_dropped_and_counted(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("text,label\ngood,pos\n,neg\n   ,neg\nbad,\nfine,pos\nshort\n", encoding="utf-8")
    data = load_dataset(path)
    assert data.texts == ["good", "fine"]
    assert data.dropped_lines == [3, 4, 5, 7]


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.csv", r"Data file not found: .*missing.csv"),
    ("text,label\n", "empty.csv", r"empty.csv has no usable rows"),
    ("", "blank.csv", r"blank.csv has no usable rows"),
    ("text,label\n,x\n", "holes.csv", r"holes.csv has no usable rows \(1 rows dropped for empty or missing text or label\)"),
    ("sentence,label\nhi,x\n", "cols.csv", r"Column 'text' not found in .*cols.csv; its columns are: 'sentence', 'label'. Choose one with --text-column."),
    ('{"text": "a", "y": 1}\n', "cols.jsonl", r"Column 'label' not found in .*cols.jsonl; its columns are: 'text', 'y'. Choose one with --label-column."),
    ('{"text": "a", "label": 1}\n{oops}\n', "bad.jsonl", r"bad.jsonl line 2: not valid JSON"),
    ("[1, 2]\n", "list.jsonl", r"list.jsonl line 1: expected a JSON object, got list"),
    ("text,label\na,b\n", "data.xlsx", r"Cannot tell the format of .*data.xlsx from its extension"),
])
def test_bad_files_get_a_message_naming_file_and_line(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_dataset(path)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ngood,pos\ncaf\xe9 au lait,neg\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv line 3: bytes b'\\xe9' are not valid UTF-8"):
        load_dataset(path)


def test_stratified_split_keeps_class_shares_and_singletons_in_training():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"]
    train, valid = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(16))
    assert sorted(labels[i] for i in valid) == ["a", "a", "b"]
    assert 15 in train  # The only "c" stays in training.
    again = stratified_split(labels, 0.2, seed=0)
    assert train.tolist() == again[0].tolist() and valid.tolist() == again[1].tolist()


def test_stratified_split_refuses_when_nothing_can_be_held_out():
    with pytest.raises(ValueError, match=r"Too few rows \(2\) to hold out a validation set"):
        stratified_split(["a", "b"], 0.2, seed=0)


def test_integer_labels_equal_as_numbers_keep_one_order_whatever_the_hash_seed():
    import subprocess
    import sys

    code = "from textclf.data.dataset import sorted_classes; print(sorted_classes(['01', '1', '2', '02', '10']))"
    orders = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip() for seed in range(1, 6)}
    assert orders == {"['01', '1', '02', '2', '10']"}
