"""Every input format (gzip, Parquet, fastText, a folder per class, standard input), encodings, and their errors."""

import gzip
import io
import json

import pyarrow
import pyarrow.parquet
import pytest

from textclf import load, load_dataset
from textclf.data.dataset import dataset_from_text

from conftest import NEGATIVE, POSITIVE, make_rows, run_cli


def write_parquet(path, columns: dict):
    pyarrow.parquet.write_table(pyarrow.table(columns), path)
    return path


def write_folder(root, files: dict):
    """``{"pos/a.txt": "text"}`` as files under ``root``."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")
    return root


def test_gzip_of_csv_tsv_jsonl_and_fasttext_uses_the_inner_extension(tmp_path):
    contents = {
        "a.csv.gz": '\ufefftext,label\n"Hello, world",pos\nBye,neg\n',
        "a.tsv.gz": "text\tlabel\nHello, world\tpos\nBye\tneg\n",
        "a.jsonl.gz": '{"text": "Hello, world", "label": "pos"}\n{"text": "Bye", "label": "neg"}\n',
        "a.ft.gz": "__label__pos Hello, world\n__label__neg Bye\n",
    }
    for name, content in contents.items():
        (tmp_path / name).write_bytes(gzip.compress(content.encode("utf-8")))
        data = load_dataset(tmp_path / name)
        assert (data.texts, data.labels) == (["Hello, world", "Bye"], ["pos", "neg"]), name


def test_parquet_reads_only_the_text_and_label_columns(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "a.parquet", {
        "id": [1, 2, 3, 4], "text": ["good film", "bad film", "", "fine"], "label": [1, 0, 1, None],
        "notes": ["x", "y", "z", "w"],
    })
    read_columns = []
    original_iter_batches = pyarrow.parquet.ParquetFile.iter_batches

    def spying_iter_batches(self, columns=None, **kwargs):
        read_columns.append(columns)
        return original_iter_batches(self, columns=columns, **kwargs)

    monkeypatch.setattr(pyarrow.parquet.ParquetFile, "iter_batches", spying_iter_batches)
    data = load_dataset(path)
    assert (data.texts, data.labels, data.dropped_lines) == (["good film", "bad film"], ["1", "0"], [3, 4])
    assert read_columns == [["text", "label"]]
    assert load_dataset(path, label_column=None).texts == ["good film", "bad film", "fine"]
    assert read_columns[-1] == ["text"]


def test_gzipped_parquet_and_other_column_names(tmp_path):
    plain = write_parquet(tmp_path / "plain.parquet", {"review": ["great", "awful"], "stars": ["5", "1"]})
    (tmp_path / "b.parquet.gz").write_bytes(gzip.compress(plain.read_bytes()))
    data = load_dataset(tmp_path / "b.parquet.gz", text_column="review", label_column="stars")
    assert (data.texts, data.labels) == (["great", "awful"], ["5", "1"])


def test_fasttext_leading_labels_several_sorted_and_joined(tmp_path):
    path = tmp_path / "train.ft"
    path.write_text(
        "__label__pos A  fine film, __label__notalabel here\n"
        "\n"
        "__label__sport __label__politics  __label__sport The minister scored\n"
        "__label__neg\n"
        "__label__neg Dull.\n",
        encoding="utf-8",
    )
    data = load_dataset(path)
    assert data.texts == ["A  fine film, __label__notalabel here", "The minister scored", "Dull."]
    assert data.labels == ["pos", "politics|sport", "neg"]
    assert data.dropped_lines == [4]  # A label without a text.
    assert load_dataset(path, label_column=None).texts == data.texts


def test_fasttext_labels_are_joined_with_the_configured_label_sep(tmp_path):
    from textclf import TrainConfig
    from textclf.training.prepare import prepare_in_memory

    path = tmp_path / "tags.ft"
    path.write_text("__label__sport __label__politics The minister scored\n__label__sport A late goal\n"
                    "__label__politics A vote\n__label__sport __label__science Physics of a kick\n", encoding="utf-8")
    assert load_dataset(path, label_sep=",").labels == ["politics,sport", "sport", "politics", "science,sport"]
    assert dataset_from_text(path.read_text(encoding="utf-8"), data_format="fasttext", label_column="label",
                             label_sep=";").labels[0] == "politics;sport"
    split = prepare_in_memory(TrainConfig(multi_label=True, label_sep=","), path, valid=path)
    assert split.classes == ["politics", "science", "sport"]


def test_fasttext_by_extension_or_explicit_format(tmp_path):
    (tmp_path / "a.fasttext").write_text("__label__1 one\n__label__2 two\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("__label__1 one\n__label__2 two\n", encoding="utf-8")
    for data in (load_dataset(tmp_path / "a.fasttext"), load_dataset(tmp_path / "a.txt", data_format="fasttext")):
        assert (data.texts, data.labels) == (["one", "two"], ["1", "2"])


def test_explicit_format_overrides_the_extension(tmp_path):
    path = tmp_path / "export.dat.gz"
    path.write_bytes(gzip.compress(b"text,label\nhi,x\n"))
    data = load_dataset(path, data_format="csv")
    assert (data.texts, data.labels) == (["hi"], ["x"])


def test_folder_per_class_sorted_without_hidden_or_other_files(tmp_path):
    root = write_folder(tmp_path / "reviews", {
        "pos/b.txt": "second positive\n",
        "pos/a.txt": "first positive",
        "pos/deeper/c.txt": "nested positive\r\n",
        "pos/.hidden.txt": "ignored",
        "pos/notes.md": "ignored",
        "neg/z.txt": "a negative\nin two lines\n",
        "neg/empty.txt": "  \n",
        ".git/x.txt": "ignored",
        "README.txt": "ignored: not inside a class folder",
    })
    data = load_dataset(root)
    assert data.texts == ["a negative\nin two lines", "first positive", "second positive", "nested positive"]
    assert data.labels == ["neg", "pos", "pos", "pos"]
    assert (data.dropped_files, data.dropped_lines) == (["neg/empty.txt"], [])
    assert load_dataset(root, data_format="folder", label_column=None).labels == []


def test_other_encodings_and_the_line_of_undecodable_bytes(tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("text,label\ncafé au lait,boisson\n".encode("latin-1"))
    assert load_dataset(latin, encoding="latin-1").texts == ["café au lait"]
    wide = tmp_path / "wide.tsv"
    wide.write_bytes("text\tlabel\nnaïve\tx\n".encode("utf-16"))  # With a BOM, as Windows writes it.
    assert load_dataset(wide, encoding="utf-16").texts == ["naïve"]
    folder = write_folder(tmp_path / "folder", {"a/1.txt": "", "b/1.txt": ""})
    (folder / "a" / "1.txt").write_bytes("crème".encode("cp1252"))
    (folder / "b" / "1.txt").write_bytes("brûlée".encode("cp1252"))
    assert load_dataset(folder, encoding="cp1252").texts == ["crème", "brûlée"]

    windows = tmp_path / "windows.csv"
    windows.write_bytes(b"text,label\nok,x\nbad \x81 byte,y\n")
    with pytest.raises(ValueError,
                       match=r"windows.csv line 3: bytes b'\\x81' are not valid cp1252 \(check --encoding\)"):
        load_dataset(windows, encoding="cp1252")
    surrogate = tmp_path / "surrogate.csv"
    surrogate.write_bytes("text,label\nok,x\n".encode("utf-16-le") + b"\x00\xdc")
    with pytest.raises(ValueError, match=r"surrogate.csv line 3: bytes .* are not valid utf-16-le"):
        load_dataset(surrogate, encoding="utf-16-le")
    bad = write_folder(tmp_path / "bad", {"neg/neg.txt": "", "pos/pos.txt": "ok"})
    (bad / "neg" / "neg.txt").write_bytes(b"fine\ncaf\xe9")
    with pytest.raises(ValueError, match=r"neg.txt line 2: bytes b'\\xe9' are not valid UTF-8"):
        load_dataset(bad)


def test_text_in_memory_as_from_standard_input():
    assert dataset_from_text("one\n\ntwo\n").texts == ["one", "two"]
    data = dataset_from_text("text,label\nhi,x\n", data_format="csv", label_column="label")
    assert (data.texts, data.labels) == (["hi"], ["x"])


@pytest.mark.parametrize("files, message", [
    ({"loose.txt": "a text"}, r"folder has no class subfolders; expected one subfolder per label"),
    ({"pos/a.txt": "good", "neg/notes.md": "x", "mid/.hidden.txt": "x"},
     r"folder: class subfolders with no \.txt files: 'mid', 'neg'"),
])
def test_folder_errors_name_the_folder_and_the_empty_classes(tmp_path, files, message):
    root = tmp_path / "folder"
    root.mkdir()
    write_folder(root, files)
    with pytest.raises(ValueError, match=message):
        load_dataset(root)


@pytest.mark.parametrize("name, content, options, message", [
    ("x.ft", b"__label__a fine\nno label here\n", {}, r"x.ft line 2: no label; a fastText line starts with"),
    ("x.parquet", None, {"label_column": "class"},
     r"Column 'class' not found in .*x.parquet; its columns are: 'text', 'label', 'id'. Choose one with --label-column."),
    ("fake.parquet", b"text,label\na,b\n", {}, r"fake.parquet is not a Parquet file"),
    ("x.csv", b"text,label\na,b\n", {"data_format": "xlsx"},
     r"Unknown format 'xlsx' for .*x.csv; expected one of csv, tsv, jsonl, parquet, fasttext, folder, lines"),
    ("x.csv", b"text,label\na,b\n", {"encoding": "klingon"}, r"Unknown encoding 'klingon' for .*x.csv"),
    ("plain.csv.gz", b"text,label\na,b\n", {},
     r"plain.csv.gz is not valid gzip data \(Not a gzipped file .*\), yet its name ends in .gz"),
    ("cut.jsonl.gz", gzip.compress(b'{"text": "a", "label": "b"}\n')[:-6], {}, r"cut.jsonl.gz is not valid gzip data"),
    ("bare.gz", gzip.compress(b"text,label\na,b\n"), {}, r"Cannot tell the format of .*bare.gz from its extension"),
    ("x.csv", b"text,label\na,b\n", {"data_format": "folder"}, r"Expected a folder with one subfolder per class"),
    # A quote left open would swallow the rest of the file into one text; a stray one would vanish from the text.
    ("open.csv", b'text,label\ngood,pos\n"what a mess,neg\ndull,neg\n', {},
     r"open.csv line 3: a quoted field opened in this row is never closed \(the file ends inside it, line 4\)$"),
    ("stray.tsv", b'text\tlabel\n"He said "hi" there"\tpos\n', {},
     r"stray.tsv line 2: a quoted field's closing quote is followed by text, not by a tab or the line's end \(a "
     r'quote inside a quoted field is written twice: ""\)$'),
])
def test_bad_input_gets_a_message_naming_the_file(tmp_path, name, content, options, message):
    path = tmp_path / name
    if content is None:
        write_parquet(path, {"text": ["a"], "label": ["b"], "id": [1]})
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_dataset(path, **options)


def test_cli_reading_errors_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty_folder").mkdir()
    status, _, err = run_cli(capsys, "train", tmp_path / "empty_folder")
    assert status == 2
    assert f"textclf train: error: {tmp_path / 'empty_folder'} has no class subfolders" in err
    (tmp_path / "data.csv").write_text("text,label\na,b\n", encoding="utf-8")
    status, _, err = run_cli(capsys, "train", tmp_path / "data.csv", "--format", "xlsx")
    assert status == 2 and "Unknown format 'xlsx' for" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a text\n"))
    status, _, err = run_cli(capsys, "predict", tmp_path / "no-model", "--input", "-", "--input-format", "parquet")
    assert status == 2 and "<stdin>: format 'parquet' cannot be read from a stream of text" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # Before the model is loaded: no model needed.
    status, out, err = run_cli(capsys, "predict", tmp_path / "no-model", "--input", "-")
    assert (status, out) == (2, "")
    assert err == "textclf predict: error: <stdin> has no usable rows\n"


@pytest.mark.slow
def test_train_on_a_folder_per_class_then_predict_from_standard_input(tmp_path, capsys, monkeypatch):
    rows = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 40, seed=7)
    root = write_folder(tmp_path / "reviews", {f"{label}/{index:03d}.txt": text
                                              for index, (text, label) in enumerate(rows)})
    output = tmp_path / "export"
    status, out, err = run_cli(capsys, "train", root, "--output", output, "--epochs", "1", "--units", "4",
                               "--embedding-dim", "4", "--max-len", "6")
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["export"] == str(output / "1")
    assert "32 training rows, 8 validation rows, 2 labels" in err

    monkeypatch.setattr("sys.stdin", io.StringIO("great lovely film\nawful dull plot\n\n?!\n"))
    status, out, err = run_cli(capsys, "predict", output, "--input", "-")
    assert status == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == ["great lovely film", "awful dull plot", "?!"]
    run_dir = next((output / "runs").iterdir())
    expected = load(run_dir).predict(["great lovely film", "awful dull plot", "?!"])
    assert [line["label"] for line in lines] == [prediction.label for prediction in expected]
    assert [line["score"] for line in lines] == pytest.approx([prediction.score for prediction in expected], abs=2e-6)

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("très bien\n".encode("latin-1"))))
    status, out, err = run_cli(capsys, "predict", output, "--input", "-", "--encoding", "latin-1")
    assert status == 0, err
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["très bien"]


@pytest.mark.parametrize("name, content, message", [
    # An unquoted comma inside a text: "pos" would have been dropped and "really nice" taken for the label.
    ("commas.csv", b"text,label\ngood film,pos\nnice film, really nice,pos\n",
     r"commas.csv line 3: 3 fields where the header has 2 \(a text holding ',' must be quoted: \"...\"\)$"),
    ("tabs.tsv", b"text\tlabel\na\tb\tc\n", r"tabs.tsv line 2: 3 fields where the header has 2 \(a text holding a tab"),
    # Two "label" columns: the last one silently won.
    ("twice.csv", b"text,label,label\ngood,pos,A\n",
     r"twice.csv line 1: the header names 'label' more than once; give each column its own name$"),
    # Line ends "\r" count as lines, as they split lines; the first undecodable byte is on line 2.
    ("mac.txt", b"good\rcaf\xe9\rbad\r", r"mac.txt line 2: bytes b'\\xe9' are not valid UTF-8"),
    ("split.csv", b"text,label\r\nok,x\r\n\"two\r\nlines\",y\r\ncaf\xe9,z\r\n", r"split.csv line 5: bytes b'\\xe9'"),
])
def test_malformed_rows_name_their_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    options = {"label_column": None} if name.endswith(".txt") else {}
    with pytest.raises(ValueError, match=message):
        load_dataset(path, **options)


def test_extra_empty_fields_are_allowed_and_rows_are_named_by_their_first_line(tmp_path):
    from textclf.data.formats import read_rows

    path = tmp_path / "rows.csv"
    path.write_bytes(b'text,label\ngood,pos,\n"two\nlines",neg\nthird,pos\n')
    assert [(where, text, label) for where, text, label in read_rows(path)] == [
        (2, "good", "pos"), (3, "two\nlines", "neg"), (5, "third", "pos")]


def test_utf16_without_a_byte_order_mark_names_the_file_and_the_byte_orders(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_bytes(b"text,label\ngood,pos\n")
    with pytest.raises(ValueError, match=r"plain.csv line 1: cannot be read as utf-16: UTF-16 stream does not start "
                                         r"with BOM \(utf-16-le or utf-16-be name the byte order of a file without "
                                         r"one\)$"):
        load_dataset(path, encoding="utf-16")


def test_nan_is_a_missing_value_and_binary_parquet_text_is_decoded(tmp_path):
    path = write_parquet(tmp_path / "binary.parquet", {
        "text": pyarrow.array([b"good film", b"bad film", "caf\u00e9".encode(), b"dull"], pyarrow.binary()),
        "label": [1.0, 0.0, 1.0, float("nan")]})
    data = load_dataset(path)
    assert (data.texts, data.labels, data.dropped_lines) == (["good film", "bad film", "café"], ["1.0", "0.0", "1.0"],
                                                             [4])
    lines = tmp_path / "nan.jsonl"
    lines.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": NaN}\n{"text": NaN, "label": "y"}\n')
    data = load_dataset(lines)
    assert (data.texts, data.labels, data.dropped_lines) == (["a"], ["x"], [2, 3])
    bad = write_parquet(tmp_path / "bad.parquet", {"text": pyarrow.array([b"ok", b"caf\xe9"], pyarrow.binary()),
                                                   "label": ["a", "b"]})
    with pytest.raises(ValueError, match=r"bad.parquet row 2: bytes b'\\xe9' of a binary column are not valid UTF-8"):
        load_dataset(bad)
