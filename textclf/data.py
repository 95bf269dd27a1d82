"""Reading labelled text from CSV, TSV and JSONL files, and splitting it.

Every problem with a file is raised as ``ValueError`` naming the file (and the
line, where there is one) and what was expected; the CLI turns it into exit
status 2.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "lines"}


@dataclasses.dataclass
class Dataset:
    """Texts and their labels (as strings), read from ``path``.

    ``dropped_lines`` lists the line numbers of rows dropped for an empty or
    missing text or label.
    """

    texts: list[str]
    labels: list[str]
    path: str = "<memory>"
    dropped_lines: list[int] = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.texts)

    def subset(self, indices) -> "Dataset":
        """The rows at ``indices``, in that order."""
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.path)


def _read_text(path: Path, encoding: str = "utf-8-sig") -> str:
    if not path.exists():
        raise ValueError(f"Data file not found: {path}")
    if path.is_dir():
        raise ValueError(f"Expected a data file, got a folder: {path}")
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path} line {line}: bytes {raw[error.start:error.end]!r} are not valid UTF-8 "
            "(save the file as UTF-8)"
        ) from None


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot tell the format of {path} from its extension; expected one of "
            f"{', '.join(sorted(FORMATS))}"
        )
    return fmt


def _records(path: Path, fmt: str):
    """Yields ``(line_number, record)`` where record maps column names to values."""
    content = _read_text(path)
    if fmt == "jsonl":
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} line {number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
            yield number, record
        return
    # Let csv increase its field size limit: news articles exceed the 128 KiB default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(content, newline=""), delimiter="," if fmt == "csv" else "\t")
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [name.strip() for name in header]
    yield 1, header  # The header travels as a list so callers can list the columns.
    try:
        for row in reader:
            if row:
                yield reader.line_num, dict(zip(header, row))
    except csv.Error as error:
        raise ValueError(f"{path} line {reader.line_num}: {error}") from None


def _columns_error(path, column, option, columns):
    return ValueError(
        f"Column {column!r} not found in {path}; its columns are: {', '.join(map(repr, columns)) or '(none)'}. "
        f"Choose one with {option}."
    )


def _clean(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value)
    return value if value.strip() else None


def load_dataset(path, text_column: str = "text", label_column: str | None = "label") -> Dataset:
    """Reads texts and labels from a CSV, TSV or JSONL file.

    Rows whose text or label is empty or missing are dropped and their line
    numbers kept in ``Dataset.dropped_lines``.

    Args:
        path: File path; the format comes from the extension.
        text_column: Column or key of the text.
        label_column: Column or key of the label; ``None`` reads texts only.

    Returns:
        A :class:`Dataset` (labels are strings; ``[]`` when ``label_column`` is None).

    Example:
        >>> data = load_dataset("data/rt_polarity.csv")
        >>> data.texts[0], data.labels[0]
    """
    path = Path(path)
    fmt = _format_of(path)
    texts, labels, dropped = [], [], []
    if fmt == "lines":
        if label_column is not None:
            raise ValueError(f"{path} is plain text (one text per line) and has no labels; use CSV, TSV or JSONL")
        for number, line in enumerate(_read_text(path).splitlines(), start=1):
            (texts.append(line) if line.strip() else dropped.append(number))
        return Dataset(texts, [], str(path), dropped)
    wanted = [text_column] + ([label_column] if label_column is not None else [])
    seen_columns: set[str] = set()
    for number, record in _records(path, fmt):
        if isinstance(record, list):  # CSV/TSV header.
            for column, option in zip(wanted, ("--text-column", "--label-column")):
                if column not in record:
                    raise _columns_error(path, column, option, record)
            continue
        if fmt == "jsonl":
            seen_columns.update(record)
        text = _clean(record.get(text_column))
        label = _clean(record.get(label_column)) if label_column is not None else ""
        if text is None or label is None:
            dropped.append(number)
            continue
        texts.append(text)
        if label_column is not None:
            labels.append(label.strip())
    if fmt == "jsonl" and seen_columns:
        for column, option in zip(wanted, ("--text-column", "--label-column")):
            if column not in seen_columns:
                raise _columns_error(path, column, option, sorted(seen_columns))
    if not texts:
        detail = f" ({len(dropped)} rows dropped for empty or missing text or label)" if dropped else ""
        raise ValueError(f"{path} has no usable rows{detail}")
    return Dataset(texts, labels, str(path), dropped)


def sorted_classes(labels) -> list[str]:
    """Distinct labels in a stable order: numeric order when all are integers."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def stratified_split(labels, fraction: float, seed: int):
    """Indices of a per-class random split: ``(train_indices, valid_indices)``.

    Each class contributes ``round(fraction * count)`` rows to validation, but
    always keeps at least one row for training, so a class with a single
    example stays in training (scikit-learn's splitter refuses such data).

    Args:
        labels: One label per row.
        fraction: Share of each class to hold out.
        seed: Seed of the shuffle.

    Returns:
        Two sorted ``np.ndarray`` of row indices.
    """
    labels = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in sorted_classes(labels.tolist()):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        count = min(int(round(fraction * len(rows))), len(rows) - 1)
        valid.extend(rows[:count])
        train.extend(rows[count:])
    if not valid and fraction > 0:
        raise ValueError(
            f"Too few rows ({len(labels)}) to hold out a validation set with validation_fraction={fraction}; "
            "add rows or pass a validation file with --valid"
        )
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(valid, dtype=np.int64))
