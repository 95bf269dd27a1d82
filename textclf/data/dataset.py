"""Loading labelled text into a :class:`Dataset`, and splitting it.

The formats themselves (CSV, TSV, JSONL, Parquet, fastText, a folder per
class, plain lines, gzip of the files) are read by :mod:`textclf.data.formats`.
Every problem with a file is raised as ``ValueError`` naming the file (and the
line, where there is one) and what was expected; the CLI turns it into exit
status 2.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from textclf.data.formats import check_format, read_rows, text_rows


@dataclasses.dataclass
class Dataset:
    """Texts and their labels (as strings), read from ``path``.

    ``dropped_lines`` lists the line numbers (Parquet: row numbers) of rows
    dropped for an empty or missing text or label; ``dropped_files`` lists the
    empty files of a folder per class, as paths inside the folder.
    """

    texts: list[str]
    labels: list[str]
    path: str = "<memory>"
    dropped_lines: list[int] = dataclasses.field(default_factory=list)
    dropped_files: list[str] = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.texts)

    def subset(self, indices) -> "Dataset":
        """The rows at ``indices``, in that order."""
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.path)


def _clean(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value)
    return value if value.strip() else None


def clean_row(text, label, label_column: str | None):
    """``(text, label)`` of a raw row as a :class:`Dataset` keeps them, or ``None`` when the row is dropped.

    A row is dropped when its text, or its label (when labels are read), is
    missing, empty or only spaces; labels are stripped.  The streaming path
    (:mod:`textclf.data.streaming`) cleans with this too, so both keep the same rows.

    Args:
        text: The raw text.
        label: The raw label (ignored when ``label_column`` is None).
        label_column: ``None`` when labels are not read.

    Returns:
        ``(text, label)`` strings (label ``""`` without labels), or ``None``.

    Example:
        >>> clean_row(" a film ", " pos ", "label")
        (' a film ', 'pos')
    """
    text = _clean(text)
    if label_column is None:
        return None if text is None else (text, "")
    label = _clean(label)
    return None if text is None or label is None else (text, label.strip())


def _collect(rows, source, label_column: str | None) -> Dataset:
    """A :class:`Dataset` of raw ``(where, text, label)`` rows, dropping empty or missing values."""
    texts, labels, dropped_lines, dropped_files = [], [], [], []
    for where, text, label in rows:
        row = clean_row(text, label, label_column)
        if row is None:
            # A folder per class names its rows by file, every other format by line number.
            (dropped_files if isinstance(where, str) else dropped_lines).append(where)
            continue
        texts.append(row[0])
        if label_column is not None:
            labels.append(row[1])
    if not texts:
        dropped = len(dropped_lines) + len(dropped_files)
        detail = f" ({dropped} rows dropped for empty or missing text or label)" if dropped else ""
        raise ValueError(f"{source} has no usable rows{detail}")
    return Dataset(texts, labels, str(source), dropped_lines, dropped_files)


def load_dataset(
    path,
    text_column: str = "text",
    label_column: str | None = "label",
    data_format: str | None = None,
    encoding: str = "utf-8",
    label_sep: str = "|",
) -> Dataset:
    """Reads texts and labels from a file or a folder per class.

    Formats: CSV, TSV, JSONL, Parquet, fastText (``__label__x text``), a
    folder with one subfolder of ``.txt`` files per label, plain lines
    (texts only), and gzip of any of the files (``data.csv.gz``).  Rows whose
    text or label is empty or missing are dropped and their line numbers kept
    in ``Dataset.dropped_lines`` (empty files of a folder in ``dropped_files``).

    Args:
        path: File or folder path.
        text_column: Column or key of the text (CSV, TSV, JSONL, Parquet).
        label_column: Column or key of the label; ``None`` reads texts only.
            fastText labels and class folders ignore the name.
        data_format: ``csv``, ``tsv``, ``jsonl``, ``parquet``, ``fasttext``,
            ``folder`` or ``lines``; ``None`` decides from the extension
            (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``,
            ``.ft``/``.fasttext``, ``.txt``, each optionally ``.gz``; a folder).
        encoding: Encoding of text files; UTF-8 may start with a BOM.
        label_sep: The multi-label separator (``TrainConfig.label_sep``): a
            fastText line with several labels keeps them sorted and joined with it.

    Returns:
        A :class:`Dataset` (labels are strings; ``[]`` when ``label_column`` is None).

    Example:
        >>> data = load_dataset("data/rt_polarity.csv")
        >>> data.texts[0], data.labels[0]
    """
    path = Path(path)
    return _collect(read_rows(path, data_format, text_column, label_column, encoding, label_sep), path, label_column)


def text_batches(path, batch_size: int, text_column: str = "text", data_format: str | None = None,
                 encoding: str = "utf-8", progress=None):
    """Texts of a file in lists of ``batch_size``, read incrementally: memory stays bounded by the batch.

    Rows with an empty or missing text are skipped, as :func:`load_dataset`
    drops them.

    Args:
        path: File (any format :func:`load_dataset` reads) or folder.
        batch_size: Texts per list.
        text_column: Column or key of the text.
        data_format: Format name; ``None`` decides from the extension.
        encoding: Encoding of text files.
        progress: Called as ``progress(done, total)`` while reading (see :func:`textclf.data.formats.read_rows`).

    Returns:
        An iterator of lists of texts.

    Raises:
        ValueError: when the file has no usable row (after reading all of it).

    Example:
        >>> for texts in text_batches("reviews.csv", 1024):
        ...     print(len(texts))
    """
    path = Path(path)
    batch, seen = [], False
    for _where, text, label in read_rows(path, data_format, text_column, None, encoding, progress=progress):
        row = clean_row(text, label, None)
        if row is None:
            continue
        batch.append(row[0])
        if len(batch) == batch_size:
            seen = True
            yield batch
            batch = []
    if batch:
        yield batch
    elif not seen:
        raise ValueError(f"{path} has no usable rows")


def dataset_from_text(
    content: str,
    source: str = "<stdin>",
    data_format: str | None = "lines",
    text_column: str = "text",
    label_column: str | None = None,
    label_sep: str = "|",
) -> Dataset:
    """Reads a :class:`Dataset` from text already in memory, such as standard input.

    Args:
        content: The decoded text.
        source: What to name in messages.
        data_format: ``lines`` (one text per line), ``csv``, ``tsv``, ``jsonl`` or ``fasttext``.
        text_column: Column or key of the text.
        label_column: Column or key of the label; ``None`` (the default) reads texts only.
        label_sep: Joins the labels of a fastText line with several ``__label__`` tokens.

    Returns:
        A :class:`Dataset`.
    """
    check_format(data_format, source)
    return _collect(text_rows(content, source, data_format or "lines", text_column, label_column, label_sep),
                    source, label_column)


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
