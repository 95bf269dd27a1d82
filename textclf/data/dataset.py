"""Loading labelled text into a :class:`Dataset` (formats: :mod:`textclf.data.formats`), and splitting it.

Every problem with a file is a ``ValueError`` naming the file (and the line, where there is one) and what was
expected; the CLI turns it into exit status 2.
"""

from __future__ import annotations

import dataclasses
import io
import math
from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textclf.data.formats import check_format, line_rows, read_rows
from textclf.errors import TextclfError


@dataclasses.dataclass
class Dataset:
    """Texts and their labels (as strings), read from ``path``.

    ``dropped_lines``: line numbers (Parquet: row numbers) of rows dropped for an empty or missing text or label;
    ``dropped_files``: the empty files of a folder per class, as paths inside the folder;
    ``lines``: where each row is in ``path``, as ``dropped_lines`` names it (a folder: the file); empty when the
    rows were not read from a file.
    """

    texts: list[str]
    labels: list[str]
    path: str = "<memory>"
    dropped_lines: list[int] = dataclasses.field(default_factory=list)
    dropped_files: list[str] = dataclasses.field(default_factory=list)
    lines: Sequence = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.texts)

    def subset(self, indices) -> "Dataset":
        """The rows at ``indices``, in that order (with their ``lines``)."""
        lines = [self.lines[i] for i in indices] if len(self.lines) else []
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.path, lines=lines)


def _clean(value) -> str | None:
    # NaN is how pandas, Parquet and JSON ("NaN") write a missing value: "nan" must not become a label or a text.
    if value is None or isinstance(value, (dict, list)) or (isinstance(value, float) and math.isnan(value)):
        return None
    value = str(value)
    return value if value.strip() else None


def clean_row(text, label, label_column: str | None):
    """``(text, stripped label)`` of a raw row as a :class:`Dataset` keeps them, or ``None`` when it is dropped.

    A row is dropped when its text, or its label (unless ``label_column`` is None: then the label is ``""``), is
    missing, empty or only spaces.  Streaming cleans with this too, so both keep the same rows.
    """
    text = _clean(text)
    if label_column is None:
        return None if text is None else (text, "")
    label = _clean(label)
    return None if text is None or label is None else (text, label.strip())


def _collect(rows, source, label_column: str | None) -> Dataset:
    """A :class:`Dataset` of raw ``(where, text, label)`` rows, dropping empty or missing values."""
    texts, labels, dropped_lines, dropped_files = [], [], [], []
    lines = None  # Line numbers as 8-byte integers (a list would take 36 bytes a row); a folder's file names.
    for where, text, label in rows:
        row = clean_row(text, label, label_column)
        if row is None:
            # A folder per class names its rows by file, every other format by line number.
            (dropped_files if isinstance(where, str) else dropped_lines).append(where)
            continue
        if lines is None:
            lines = [] if isinstance(where, str) else array("q")
        lines.append(where)
        texts.append(row[0])
        if label_column is not None:
            labels.append(row[1])
    if not texts:
        dropped = len(dropped_lines) + len(dropped_files)
        detail = f" ({dropped} rows dropped for empty or missing text or label)" if dropped else ""
        raise TextclfError(f"{source} has no usable rows{detail}")
    return Dataset(texts, labels, str(source), dropped_lines, dropped_files, lines)


def load_dataset(
    path,
    text_column: str = "text",
    label_column: str | None = "label",
    data_format: str | None = None,
    encoding: str = "utf-8",
    label_sep: str = "|",
) -> Dataset:
    """Reads texts and labels from a file or a folder per class.

    Formats: CSV, TSV, JSONL, Parquet, fastText (``__label__x text``), a folder with one subfolder of ``.txt``
    files per label, plain lines (texts only), and gzip of any of the files (``data.csv.gz``).  Rows whose text
    or label is empty or missing are dropped (see :class:`Dataset`).

    Args:
        path: File or folder path.
        text_column: Column or key of the text (CSV, TSV, JSONL, Parquet).
        label_column: Column or key of the label; ``None`` reads texts only.
            fastText labels and class folders ignore the name.
        data_format: ``csv``, ``tsv``, ``jsonl``, ``parquet``, ``fasttext``, ``folder`` or ``lines``; ``None``
            decides from the extension (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``,
            ``.ft``/``.fasttext``, ``.txt``, each optionally ``.gz``; a folder).
        encoding: Encoding of text files; UTF-8 may start with a BOM.
        label_sep: The multi-label separator (``TrainConfig.label_sep``): a fastText line with several labels
            keeps them sorted and joined with it.

    Returns:
        A :class:`Dataset` (labels ``[]`` when ``label_column`` is None).
    """
    path = Path(path)
    return _collect(read_rows(path, data_format, text_column, label_column, encoding, label_sep), path, label_column)


def text_batches(path, batch_size: int, text_column: str = "text", data_format: str | None = None,
                 encoding: str = "utf-8", progress=None):
    """Texts of a file (or folder) in lists of ``batch_size``, read incrementally; memory is bounded by the batch.

    Rows with an empty or missing text are skipped, as :func:`load_dataset` drops them; a file without any
    raises ``ValueError`` once read.  ``progress`` is as :func:`textclf.data.formats.read_rows`'s.
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise TextclfError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    path = Path(path)
    batch = []
    empty = True
    for _, text, label in read_rows(path, data_format, text_column, None, encoding, progress=progress):
        row = clean_row(text, label, None)
        if row is None:
            continue
        batch.append(row[0])
        if len(batch) == batch_size:
            empty = False
            yield batch
            batch = []
    if batch:
        yield batch
    elif empty:
        raise TextclfError(f"{path} has no usable rows")


def dataset_from_text(
    content: str,
    source: str = "<stdin>",
    data_format: str | None = "lines",
    text_column: str = "text",
    label_column: str | None = None,
    label_sep: str = "|",
) -> Dataset:
    """A :class:`Dataset` of decoded text already in memory, such as standard input, named ``source`` in messages.

    ``data_format`` is ``lines`` (one text per line), ``csv``, ``tsv``, ``jsonl`` or ``fasttext``; the other
    arguments are :func:`load_dataset`'s (here ``label_column=None``, texts only, by default).

    Example:
        >>> dataset_from_text("text,label\\nhi,x\\n", data_format="csv", label_column="label").labels
        ['x']
    """
    check_format(data_format, source)
    lines = io.StringIO(content, newline="")
    rows = line_rows(lines, source, data_format or "lines", text_column, label_column, label_sep)
    return _collect(rows, source, label_column)


def sorted_classes(labels) -> list[str]:
    """Distinct labels in a stable order: numeric order when all are integers."""
    distinct = set(labels)
    try:
        # "1" and "01" are equal as integers: the text breaks the tie, else the set's order (the hash seed) would.
        return sorted(distinct, key=lambda label: (int(label), label))
    except ValueError:
        return sorted(distinct)


def stratified_split(labels, fraction: float, seed: int):
    """Sorted row indices ``(train, valid)`` of a per-class random split (``seed``), one label per row.

    Each class gives ``round(fraction * count)`` rows to validation but keeps at least one for training, so a
    class with a single example stays in training (scikit-learn's splitter refuses such data).
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
        raise TextclfError(f"Too few rows ({len(labels)}) to hold out a validation set with validation_fraction="
                         f"{fraction}; add rows or pass a validation file with --valid")
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(valid, dtype=np.int64))
