"""Readers of the file formats textclf accepts, each yielding raw ``(where, text, label)`` rows.

``where`` is the line number (Parquet: the row number; a folder per class: the file's path inside the folder).
Every problem is a ``ValueError`` naming the file, and the line where there is one.  Files are read
incrementally (bytes in chunks, decoded incrementally, split into lines; Parquet in record batches), for
``load_dataset`` and streaming alike: memory is one chunk plus the longest row.  A folder per class is read
file by file, each whole.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import itertools
import json
import re
import sys
import tempfile
from pathlib import Path

from textclf.data.reading import DataFile, codec_name, decode, decoded_chunks, logical_lines, physical_lines
from textclf.errors import TextclfError

FORMAT_NAMES = ("csv", "tsv", "jsonl", "parquet", "fasttext", "folder", "lines")
EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".ft": "fasttext", ".fasttext": "fasttext", ".txt": "lines",
}
# Formats whose bytes are text, parsed by :func:`line_rows` once decoded.
TEXT_FORMATS = ("csv", "tsv", "jsonl", "fasttext", "lines")
# A leading fastText label token and the whitespace before it.
_FASTTEXT_LABEL = re.compile(r"\s*__label__(\S+)")
# Parquet rows decoded to Python at a time.
PARQUET_BATCH_ROWS = 8192


def check_format(data_format: str | None, source) -> None:
    """Refuses a format name textclf does not know (``None``: decide from the extension) for ``source``."""
    if data_format is not None and data_format not in FORMAT_NAMES:
        raise TextclfError(f"Unknown format {data_format!r} for {source}; "
                         f"expected one of {', '.join(FORMAT_NAMES)} (--format)")


def format_of(path: Path, data_format: str | None = None) -> str:
    """``data_format`` when given, else the format of ``path`` from its extension (``.gz`` looked through)."""
    check_format(data_format, path)
    if data_format is not None:
        return data_format
    if path.is_dir():
        return "folder"
    inner = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    found = EXTENSIONS.get(inner.suffix.lower())
    if found is None:
        raise TextclfError(f"Cannot tell the format of {path} from its extension; expected one of "
                         f"{', '.join(sorted(EXTENSIONS))} (optionally followed by .gz), a folder with one subfolder "
                         f"per class, or a format given with --format ({', '.join(FORMAT_NAMES)})")
    return found


def _wanted(text_column, label_column) -> list[str]:
    """The columns to read: the text's, and the label's unless labels are not wanted."""
    return [text_column] + ([label_column] if label_column is not None else [])


def _check_columns(source, wanted, columns) -> None:
    """Refuses a missing column, listing the ``columns`` there are (a list)."""
    for column, option in zip(wanted, ("--text-column", "--label-column")):
        if column not in columns:
            # A header of a million columns must not make a 13 MB message: the first 20 and a count.
            more = f", ... ({len(columns)} columns in all)" if len(columns) > 20 else ""
            shown = ", ".join(map(repr, columns[:20])) + more
            raise TextclfError(f"Column {column!r} not found in {source}; its columns are: {shown or '(none)'}. "
                             f"Choose one with {option}.")


def _pick(record: dict, text_column, label_column):
    """The raw text and label of a record; the label is ``""`` when labels are not wanted."""
    return record.get(text_column), record.get(label_column) if label_column is not None else ""


def _delimited_rows(lines, source, delimiter: str, text_column, label_column):
    # Let csv raise its field size limit: news articles exceed the 128 KiB default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # Strict: a quote left open would otherwise swallow every later line into one field, silently, and a stray
    # quote inside a quoted field would be dropped from the text.
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header, start = None, 1
    try:
        for row in reader:
            if header is None:
                header = [name.strip() for name in row]
                repeated = sorted(name for name, count in collections.Counter(header).items() if count > 1 and name)
                if repeated:
                    # Which of two "label" columns is meant cannot be guessed; the last one silently won.
                    raise TextclfError(f"{source} line {start}: the header names {', '.join(map(repr, repeated))} "
                                     "more than once; give each column its own name")
                _check_columns(source, _wanted(text_column, label_column), header)
            elif len(row) > len(header) and any(field.strip() for field in row[len(header):]):
                # An unquoted delimiter inside a text: the fields after it would shift into the wrong columns.
                raise TextclfError(f"{source} line {start}: {len(row)} fields where the header has {len(header)} "
                                 f"(a text holding {'a tab' if delimiter == chr(9) else repr(delimiter)} must be "
                                 'quoted: "...")')
            elif row:  # Fewer fields are missing values (the row is dropped if it needs them); empty extras, none.
                yield start, *_pick(dict(zip(header, row)), text_column, label_column)
            start = reader.line_num + 1  # Where the next row begins (a quoted field may span lines).
    except csv.Error as error:
        if str(error) == "unexpected end of data":
            raise TextclfError(f"{source} line {start}: a quoted field opened in this row is never closed (the file "
                             f"ends inside it, line {reader.line_num})") from None
        if "expected after '\"'" in str(error):
            separator = "a tab" if delimiter == "\t" else repr(delimiter)
            raise TextclfError(f"{source} line {reader.line_num}: a quoted field's closing quote is followed by text, "
                             f"not by {separator} or the line's end (a quote inside a quoted field is written twice: "
                             f'"")') from None
        raise TextclfError(f"{source} line {reader.line_num}: {error}") from None


def _jsonl_rows(lines, source, text_column, label_column):
    seen_columns: set[str] = set()
    for number, line in enumerate(logical_lines(lines), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TextclfError(f"{source} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise TextclfError(f"{source} line {number}: expected a JSON object, got {type(record).__name__}")
        seen_columns.update(record)
        yield number, *_pick(record, text_column, label_column)
    # Checked after reading because JSON lines need not share keys; a key present on no line is a typo.
    if seen_columns:
        _check_columns(source, _wanted(text_column, label_column), sorted(seen_columns))


def _fasttext_rows(lines, source, label_column, label_sep: str):
    for number, line in enumerate(logical_lines(lines), start=1):
        if not line.strip():
            continue
        labels, position = [], 0
        while match := _FASTTEXT_LABEL.match(line, position):
            labels.append(match.group(1))
            position = match.end()
        if not labels and label_column is not None:
            raise TextclfError(
                f"{source} line {number}: no label; a fastText line starts with one or more "
                f"__label__<name> tokens, e.g. '__label__positive a fine film'"
            )
        # Several labels stay in one string, sorted and joined with the multi-label separator.
        label = label_sep.join(sorted(set(labels))) if label_column is not None else ""
        yield number, line[position:].strip(), label


def _plain_rows(lines, source, label_column):
    if label_column is not None:
        raise TextclfError(f"{source} is plain text (one text per line) and has no labels; use CSV, TSV, JSONL, "
                         "Parquet, fastText or a folder per class")
    for number, line in enumerate(logical_lines(lines), start=1):
        yield number, line, ""


def line_rows(lines, source, data_format: str, text_column: str = "text", label_column: str | None = "label",
              label_sep: str = "|"):
    """Raw ``(line_number, text, label)`` rows of physical lines (with their endings) in one of :data:`TEXT_FORMATS`.

    Text and label are ``None`` when missing; labels are ``""`` when ``label_column`` is None.  ``label_sep``
    joins the labels of a fastText line with several ``__label__`` tokens.
    """
    if data_format in ("csv", "tsv"):
        return _delimited_rows(lines, source, "," if data_format == "csv" else "\t", text_column, label_column)
    if data_format == "jsonl":
        return _jsonl_rows(lines, source, text_column, label_column)
    if data_format == "fasttext":
        return _fasttext_rows(lines, source, label_column, label_sep)
    if data_format == "lines":
        return _plain_rows(lines, source, label_column)
    raise TextclfError(f"{source}: format {data_format!r} cannot be read from a stream of text; "
                     f"expected one of {', '.join(TEXT_FORMATS)}")


def _from_binary(value, path, row):
    """A binary Parquet value as text (UTF-8, as Parquet's own strings are); other values unchanged."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextclfError(f"{path} row {row}: bytes {value[error.start:error.end]!r} of a binary column are not valid "
                         "UTF-8") from None


def parquet_rows(path: Path, text_column: str = "text", label_column: str | None = "label", progress=None):
    """``(row_number, text, label)`` of a Parquet file, reading only the columns wanted, a batch at a time.

    Rows are numbered from 1; ``progress(rows_done, rows_total)`` is called after each batch.  A
    ``.parquet.gz`` is decompressed to a temporary file first: Parquet needs to seek, and disk holds any size.
    """
    import pyarrow
    import pyarrow.parquet as parquet

    source = DataFile(path)  # Refuses a folder.
    with contextlib.ExitStack() as stack:
        opened = str(path)
        if path.suffix.lower() == ".gz":
            opened = stack.enter_context(tempfile.TemporaryFile())
            for chunk in source.chunks():
                opened.write(chunk)
            opened.seek(0)
        try:
            parquet_file = parquet.ParquetFile(opened)
        except (pyarrow.ArrowException, OSError) as error:
            raise TextclfError(f"{path} is not a Parquet file ({error})") from None
        wanted = _wanted(text_column, label_column)
        _check_columns(path, wanted, parquet_file.schema_arrow.names)
        total, number = parquet_file.metadata.num_rows, 0
        for batch in parquet_file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            texts = batch.column(text_column).to_pylist()
            labels = batch.column(label_column).to_pylist() if label_column is not None else [""] * len(texts)
            for row, text, label in zip(range(number + 1, number + len(texts) + 1), texts, labels):
                yield row, _from_binary(text, path, row), _from_binary(label, path, row)
            number += len(texts)
            if progress is not None:
                progress(number, total)


def folder_rows(path: Path, label_column: str | None = "label", encoding: str = "utf-8"):
    """``(file inside path, text, label)`` of a folder per class, ``path/<label>/*.txt``, one text per file.

    Like Keras's ``text_dataset_from_directory``: ``.txt`` files at any depth below the label's subfolder, other
    files ignored; sorted, so the order never depends on the file system; hidden files and folders skipped.
    The text is the file's content without trailing line breaks.
    """
    if not path.is_dir():  # read_rows has refused a missing path.
        raise TextclfError(f"Expected a folder with one subfolder per class, got a file: {path}")
    classes = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    if not classes:
        raise TextclfError(f"{path} has no class subfolders; expected one subfolder per label holding .txt files "
                         f"({path}/<label>/*.txt)")
    files = {
        folder.name: sorted(file for file in folder.rglob("*.txt") if file.is_file()
                            and not any(part.startswith(".") for part in file.relative_to(folder).parts))
        for folder in classes
    }
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise TextclfError(f"{path}: class subfolders with no .txt files: {', '.join(map(repr, empty))}")
    for label, found in files.items():
        for file in found:
            text = decode(file.read_bytes(), file, encoding).rstrip("\r\n")
            yield str(file.relative_to(path)), text, label if label_column is not None else ""


def read_rows(path: Path, data_format: str | None = None, text_column: str = "text",
              label_column: str | None = "label", encoding: str = "utf-8", label_sep: str = "|", progress=None):
    """Raw ``(where, text, label)`` rows of any supported file or folder, read incrementally.

    Arguments as :func:`textclf.data.dataset.load_dataset`'s; ``progress(done, total)`` is called while reading:
    bytes of the file on disk (compressed for ``.gz``), rows for Parquet; never for a folder.
    """
    check_format(data_format, path)
    if not path.exists():
        raise TextclfError(f"Data file not found: {path}")
    guessed = data_format is None
    data_format = format_of(path, data_format)
    if data_format == "folder":
        return folder_rows(path, label_column, encoding)
    if data_format == "parquet":
        return parquet_rows(path, text_column, label_column, progress)
    codec_name(encoding, path)  # An unknown encoding is refused now, not at the first row.
    source = DataFile(path)

    def reported(chunks):
        for chunk in chunks:
            yield chunk
            if progress is not None:
                progress(source.bytes_read, source.size)

    lines = physical_lines(decoded_chunks(reported(source.chunks()), path, encoding))
    if guessed and data_format == "lines":
        # A .txt file of "__label__pos text" lines is fastText (its tools write .txt): read it as such.
        first = next(lines, "")
        lines = itertools.chain([first], lines)
        if first.lstrip("\ufeff").startswith("__label__"):
            data_format = "fasttext"
    return line_rows(lines, path, data_format, text_column, label_column, label_sep)
