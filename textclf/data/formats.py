"""Readers of the file formats textclf accepts, each yielding raw ``(where, text, label)`` rows.

``where`` is the line number (the row number for Parquet, the file's path
inside the folder for a folder per class); :func:`textclf.data.dataset.load_dataset`
cleans the rows and drops those with an empty text or label.  Every problem
is a ``ValueError`` naming the file, and the line where there is one.

Files are read incrementally: bytes in chunks (:class:`DataFile`), decoded
incrementally (:func:`decoded_chunks`), split into lines, parsed a row at a
time; Parquet in record batches.  Reading a file whole (``load_dataset``) and
streaming it (:mod:`textclf.data.streaming`) are the same code, and memory while
reading is one chunk plus the longest row.  A folder per class is the
exception: its files are read one by one, each whole.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import io
import json
import re
import sys
import tempfile
from pathlib import Path

from textclf.data.reading import DataFile, codec_name, decode, decoded_chunks, logical_lines, physical_lines

__all__ = ["FORMAT_NAMES", "TEXT_FORMATS", "check_format", "columns_error", "decode", "folder_rows", "format_of",
           "line_rows", "parquet_rows", "read_rows", "text_rows"]

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
    """Refuses a format name textclf does not know.

    Args:
        data_format: A format name, or ``None`` (decide from the extension).
        source: The file the format was meant for, named in the message.
    """
    if data_format is not None and data_format not in FORMAT_NAMES:
        raise ValueError(
            f"Unknown format {data_format!r} for {source}; expected one of {', '.join(FORMAT_NAMES)} (--format)"
        )


def format_of(path: Path, data_format: str | None = None) -> str:
    """The format of ``path``: ``data_format`` when given, else from the extension.

    A folder is read as one subfolder per class; ``.gz`` is looked through, so
    ``data.csv.gz`` is CSV.

    Args:
        path: The data file or folder.
        data_format: One of :data:`FORMAT_NAMES`, or ``None`` to decide from the extension.

    Returns:
        One of :data:`FORMAT_NAMES`.
    """
    check_format(data_format, path)
    if data_format is not None:
        return data_format
    if path.is_dir():
        return "folder"
    inner = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    found = EXTENSIONS.get(inner.suffix.lower())
    if found is None:
        raise ValueError(
            f"Cannot tell the format of {path} from its extension; expected one of "
            f"{', '.join(sorted(EXTENSIONS))} (optionally followed by .gz), a folder with one subfolder per "
            f"class, or a format given with --format ({', '.join(FORMAT_NAMES)})"
        )
    return found


def columns_error(source, column, option, columns) -> ValueError:
    """The error for a missing column, listing the columns there are."""
    columns = list(columns)
    # A header of a million columns must not make a 13 MB message: the first 20 and a count.
    shown = ", ".join(map(repr, columns[:20])) + (f", ... ({len(columns)} columns in all)" if len(columns) > 20 else "")
    return ValueError(f"Column {column!r} not found in {source}; its columns are: {shown or '(none)'}. "
                      f"Choose one with {option}.")


def _wanted(text_column, label_column) -> list[str]:
    """The columns to read: the text's, and the label's unless labels are not wanted."""
    return [text_column] + ([label_column] if label_column is not None else [])


def _check_columns(source, wanted, columns) -> None:
    for column, option in zip(wanted, ("--text-column", "--label-column")):
        if column not in columns:
            raise columns_error(source, column, option, columns)


def _pick(record: dict, text_column, label_column):
    """The raw text and label of a record; the label is ``""`` when labels are not wanted."""
    return record.get(text_column), record.get(label_column) if label_column is not None else ""


def _delimited_rows(lines, source, delimiter: str, text_column, label_column):
    # Let csv raise its field size limit: news articles exceed the 128 KiB default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as error:
        raise ValueError(f"{source} line {reader.line_num}: {error}") from None
    _check_columns(source, _wanted(text_column, label_column), header)
    try:
        for row in reader:
            if row:
                yield reader.line_num, *_pick(dict(zip(header, row)), text_column, label_column)
    except csv.Error as error:
        raise ValueError(f"{source} line {reader.line_num}: {error}") from None


def _jsonl_rows(lines, source, text_column, label_column):
    seen_columns: set[str] = set()
    for number, line in enumerate(logical_lines(lines), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{source} line {number}: expected a JSON object, got {type(record).__name__}")
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
            raise ValueError(
                f"{source} line {number}: no label; a fastText line starts with one or more "
                f"__label__<name> tokens, e.g. '__label__positive a fine film'"
            )
        # Several labels stay in one string, sorted and joined with the multi-label separator.
        label = label_sep.join(sorted(set(labels))) if label_column is not None else ""
        yield number, line[position:].strip(), label


def _plain_rows(lines, source, label_column):
    if label_column is not None:
        raise ValueError(f"{source} is plain text (one text per line) and has no labels; use CSV, TSV, JSONL, "
                         "Parquet, fastText or a folder per class")
    for number, line in enumerate(logical_lines(lines), start=1):
        yield number, line, ""


def line_rows(lines, source, data_format: str, text_column: str = "text", label_column: str | None = "label",
              label_sep: str = "|"):
    """Rows of text lines in one of :data:`TEXT_FORMATS`.

    Args:
        lines: Physical lines with their endings (:func:`physical_lines`).
        source: What to name in messages.
        data_format: One of :data:`TEXT_FORMATS`.
        text_column: Column or key of the text (CSV, TSV, JSONL).
        label_column: Column or key of the label; ``None`` reads texts only.
        label_sep: Joins the labels of a fastText line with several ``__label__`` tokens.

    Returns:
        An iterator of ``(line_number, text, label)``; text and label are raw
        values (``None`` when missing, ``""`` labels when ``label_column`` is None).
    """
    if data_format in ("csv", "tsv"):
        return _delimited_rows(lines, source, "," if data_format == "csv" else "\t", text_column, label_column)
    if data_format == "jsonl":
        return _jsonl_rows(lines, source, text_column, label_column)
    if data_format == "fasttext":
        return _fasttext_rows(lines, source, label_column, label_sep)
    if data_format == "lines":
        return _plain_rows(lines, source, label_column)
    raise ValueError(f"{source}: format {data_format!r} cannot be read from a stream of text; "
                     f"expected one of {', '.join(TEXT_FORMATS)}")


def text_rows(content: str, source, data_format: str, text_column: str = "text", label_column: str | None = "label",
              label_sep: str = "|"):
    """Rows of decoded text already in memory (standard input); see :func:`line_rows`.

    Example:
        >>> list(text_rows("text,label\\nhi,x\\n", "<stdin>", "csv"))
        [(2, 'hi', 'x')]
    """
    return line_rows(io.StringIO(content, newline=""), source, data_format, text_column, label_column, label_sep)


def parquet_rows(path: Path, text_column: str = "text", label_column: str | None = "label", progress=None):
    """Rows of a Parquet file (optionally gzip), reading only the text and label columns, a batch at a time.

    A ``.parquet.gz`` is first decompressed to a temporary file: Parquet
    needs to seek, and the disk, not memory, can hold any size.

    Args:
        path: The file.
        text_column: Column of the text.
        label_column: Column of the label; ``None`` reads texts only.
        progress: Called as ``progress(rows_done, rows_total)`` after each batch.

    Returns:
        An iterator of ``(row_number, text, label)``, rows numbered from 1.
    """
    import pyarrow
    import pyarrow.parquet as parquet

    source = DataFile(path)  # Refuses a missing file or a folder.
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
            raise ValueError(f"{path} is not a Parquet file ({error})") from None
        wanted = _wanted(text_column, label_column)
        _check_columns(path, wanted, parquet_file.schema_arrow.names)
        total, number = parquet_file.metadata.num_rows, 0
        for batch in parquet_file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            texts = batch.column(text_column).to_pylist()
            labels = batch.column(label_column).to_pylist() if label_column is not None else [""] * len(texts)
            yield from zip(range(number + 1, number + len(texts) + 1), texts, labels)
            number += len(texts)
            if progress is not None:
                progress(number, total)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def folder_rows(path: Path, label_column: str | None = "label", encoding: str = "utf-8"):
    """Rows of a folder per class: ``path/<label>/*.txt``, one text per file.

    Like Keras's ``text_dataset_from_directory``: the label is the subfolder's
    name, ``.txt`` files are found at any depth below it, other files are
    ignored.  Subfolders and files are sorted, so the order never depends on
    the file system; hidden files and folders (``.name``) are skipped.

    Returns:
        An iterator of ``(file, text, label)``: ``file`` is the path inside
        ``path``, text the file's content without trailing line breaks.
    """
    if not path.exists():
        raise ValueError(f"Data folder not found: {path}")
    if not path.is_dir():
        raise ValueError(f"Expected a folder with one subfolder per class, got a file: {path}")
    classes = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    if not classes:
        raise ValueError(f"{path} has no class subfolders; expected one subfolder per label holding .txt files "
                         f"({path}/<label>/*.txt)")
    files = {
        folder.name: sorted(file for file in folder.rglob("*.txt")
                            if file.is_file() and not _is_hidden(file.relative_to(folder)))
        for folder in classes
    }
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise ValueError(f"{path}: class subfolders with no .txt files: {', '.join(map(repr, empty))}")
    for label, found in files.items():
        for file in found:
            text = decode(file.read_bytes(), file, encoding).rstrip("\r\n")
            yield str(file.relative_to(path)), text, label if label_column is not None else ""


def read_rows(path: Path, data_format: str | None = None, text_column: str = "text",
              label_column: str | None = "label", encoding: str = "utf-8", label_sep: str = "|", progress=None):
    """Rows of any supported file or folder, read incrementally (a folder per class file by file).

    Args:
        path: File or folder.
        data_format: One of :data:`FORMAT_NAMES`; ``None`` decides from the extension.
        text_column: Column or key of the text (CSV, TSV, JSONL, Parquet).
        label_column: Column or key of the label; ``None`` reads texts only.
        encoding: Encoding of text files (Parquet stores its own).
        label_sep: Joins the labels of a fastText line with several ``__label__`` tokens.
        progress: Called as ``progress(done, total)`` while reading: bytes of
            the file on disk (compressed for ``.gz``), rows for Parquet; never
            for a folder.

    Returns:
        An iterator of ``(where, text, label)``.

    Example:
        >>> for line, text, label in read_rows(Path("data/rt_polarity.csv")):
        ...     pass
    """
    check_format(data_format, path)
    if not path.exists():
        raise ValueError(f"Data file not found: {path}")
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
