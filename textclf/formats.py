"""Readers of the file formats textclf accepts, each yielding raw ``(where, text, label)`` rows.

``where`` is the line number (the row number for Parquet, the file's path
inside the folder for a folder per class); :func:`textclf.data.load_dataset`
cleans the rows and drops those with an empty text or label.  Every problem
is a ``ValueError`` naming the file, and the line where there is one.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import sys
import zlib
from pathlib import Path

FORMAT_NAMES = ("csv", "tsv", "jsonl", "parquet", "fasttext", "folder", "lines")
EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".ft": "fasttext", ".fasttext": "fasttext", ".txt": "lines",
}
# Formats whose bytes are text, parsed by :func:`text_rows` once decoded.
TEXT_FORMATS = ("csv", "tsv", "jsonl", "fasttext", "lines")
# A leading fastText label token and the whitespace before it.
_FASTTEXT_LABEL = re.compile(r"\s*__label__(\S+)")


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


def read_bytes(path: Path) -> bytes:
    """The bytes of a data file, decompressed when its name ends in ``.gz``."""
    if not path.exists():
        raise ValueError(f"Data file not found: {path}")
    if path.is_dir():
        raise ValueError(f"Expected a data file, got a folder: {path}")
    raw = path.read_bytes()
    if path.suffix.lower() != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; EOFError when truncated.
        raise ValueError(f"{path} is not valid gzip data ({error}), yet its name ends in .gz") from None


def decode(raw: bytes, source, encoding: str = "utf-8") -> str:
    """Decodes ``raw``; a UTF-8 byte-order mark is dropped.

    Args:
        raw: The bytes.
        source: What to name in messages (a path, ``<stdin>``).
        encoding: Any codec name Python knows (``utf-8``, ``latin-1``, ``cp1252``, ``utf-16``...).

    Returns:
        The text.

    Raises:
        ValueError: for an unknown encoding, or naming the line of the first undecodable bytes.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"Unknown encoding {encoding!r} for {source} (--encoding)") from None
    # utf-8-sig reads UTF-8 with or without a BOM, so a BOM never sticks to the first column name.
    name = "utf-8-sig" if codec.name == "utf-8" else codec.name
    try:
        return raw.decode(name)
    except UnicodeDecodeError as error:
        # Count line breaks in the decoded prefix, not newline bytes: in UTF-16 a 0x0A byte is not always one.
        line = raw[: error.start].decode(name, errors="replace").count("\n") + 1
        bad = raw[error.start:error.end]
        if name == "utf-8-sig":
            advice = f"bytes {bad!r} are not valid UTF-8 (save the file as UTF-8, or give its encoding with --encoding)"
        else:
            advice = f"bytes {bad!r} are not valid {codec.name} (check --encoding)"
        raise ValueError(f"{source} line {line}: {advice}") from None


def columns_error(source, column, option, columns) -> ValueError:
    """The error for a missing column, listing the columns there are."""
    return ValueError(
        f"Column {column!r} not found in {source}; its columns are: {', '.join(map(repr, columns)) or '(none)'}. "
        f"Choose one with {option}."
    )


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


def _delimited_rows(content: str, source, delimiter: str, text_column, label_column):
    # Let csv raise its field size limit: news articles exceed the 128 KiB default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    _check_columns(source, _wanted(text_column, label_column), header)
    try:
        for row in reader:
            if row:
                yield reader.line_num, *_pick(dict(zip(header, row)), text_column, label_column)
    except csv.Error as error:
        raise ValueError(f"{source} line {reader.line_num}: {error}") from None


def _jsonl_rows(content: str, source, text_column, label_column):
    seen_columns: set[str] = set()
    for number, line in enumerate(content.splitlines(), start=1):
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


def _fasttext_rows(content: str, source, label_column):
    for number, line in enumerate(content.splitlines(), start=1):
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
        # Several labels stay in one string, sorted and joined with "|", the multi-label separator.
        label = "|".join(sorted(set(labels))) if label_column is not None else ""
        yield number, line[position:].strip(), label


def _plain_rows(content: str, source, label_column):
    if label_column is not None:
        raise ValueError(f"{source} is plain text (one text per line) and has no labels; use CSV, TSV, JSONL, "
                         "Parquet, fastText or a folder per class")
    for number, line in enumerate(content.splitlines(), start=1):
        yield number, line, ""


def text_rows(content: str, source, data_format: str, text_column: str = "text", label_column: str | None = "label"):
    """Rows of decoded text in one of :data:`TEXT_FORMATS`.

    Args:
        content: The decoded text.
        source: What to name in messages.
        data_format: One of :data:`TEXT_FORMATS`.
        text_column: Column or key of the text (CSV, TSV, JSONL).
        label_column: Column or key of the label; ``None`` reads texts only.

    Returns:
        An iterator of ``(line_number, text, label)``; text and label are raw
        values (``None`` when missing, ``""`` labels when ``label_column`` is None).
    """
    if data_format in ("csv", "tsv"):
        return _delimited_rows(content, source, "," if data_format == "csv" else "\t", text_column, label_column)
    if data_format == "jsonl":
        return _jsonl_rows(content, source, text_column, label_column)
    if data_format == "fasttext":
        return _fasttext_rows(content, source, label_column)
    if data_format == "lines":
        return _plain_rows(content, source, label_column)
    raise ValueError(f"{source}: format {data_format!r} cannot be read from a stream of text; "
                     f"expected one of {', '.join(TEXT_FORMATS)}")


def parquet_rows(path: Path, text_column: str = "text", label_column: str | None = "label"):
    """Rows of a Parquet file (optionally gzip), reading only the text and label columns.

    Returns:
        An iterator of ``(row_number, text, label)``, rows numbered from 1.
    """
    import pyarrow
    import pyarrow.parquet as parquet

    raw = read_bytes(path)
    try:
        # A pyarrow reader over the bytes in memory: the gzip case has no file to hand it.
        parquet_file = parquet.ParquetFile(pyarrow.BufferReader(raw))
    except (pyarrow.ArrowException, OSError) as error:
        raise ValueError(f"{path} is not a Parquet file ({error})") from None
    wanted = _wanted(text_column, label_column)
    _check_columns(path, wanted, parquet_file.schema_arrow.names)
    table = parquet_file.read(columns=wanted)
    texts = table.column(text_column).to_pylist()
    labels = table.column(label_column).to_pylist() if label_column is not None else [""] * len(texts)
    return zip(range(1, len(texts) + 1), texts, labels)


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
              label_column: str | None = "label", encoding: str = "utf-8"):
    """Rows of any supported file or folder.

    Args:
        path: File or folder.
        data_format: One of :data:`FORMAT_NAMES`; ``None`` decides from the extension.
        text_column: Column or key of the text (CSV, TSV, JSONL, Parquet).
        label_column: Column or key of the label; ``None`` reads texts only.
        encoding: Encoding of text files (Parquet stores its own).

    Returns:
        An iterator of ``(where, text, label)``.
    """
    check_format(data_format, path)
    if not path.exists():
        raise ValueError(f"Data file not found: {path}")
    data_format = format_of(path, data_format)
    if data_format == "folder":
        return folder_rows(path, label_column, encoding)
    if data_format == "parquet":
        return parquet_rows(path, text_column, label_column)
    return text_rows(decode(read_bytes(path), path, encoding), path, data_format, text_column, label_column)
