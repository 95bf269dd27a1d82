"""Training on data larger than memory: when to stream, the validation split, and the counting pass.

No list of texts is built: one counting pass fits the tokenizer, finds the labels, counts the rows and keeps a
histogram of sequence lengths (exact for ``max_len`` and the buckets); training then reads the file again
(:mod:`textclf.training.streamed_rows`).  Memory is bounded by the vocabulary, labels and distinct lengths.
The split is not stratified: a row is a validation row with probability ``validation_fraction``, decided by
``(seed, row number)`` alone (:class:`RowSplit`), so every pass and every resumed run agree on it.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from textclf.data.dataset import clean_row, sorted_classes
from textclf.data.formats import format_of, read_rows
from textclf.data.labels import row_labels
from textclf.data.progress import ProgressBar, human_bytes
from textclf.log import log
from textclf.errors import TextclfError

# ``streaming="auto"`` streams when the data would take more than this share of the available memory.
AUTO_MEMORY_SHARE = 0.25
# Compressed files (.gz, Parquet) are counted at this many times their size on disk.
COMPRESSED_EXPANSION = 4
# split_mode "auto" is decided on this many first rows: the counting pass needs the rules before it starts.
SPLIT_MODE_SAMPLE_ROWS = 10_000
# Rows per block of the split's random numbers: one NumPy call per block, not per row.
_SPLIT_BLOCK = 1 << 16


def available_memory() -> int:
    """Bytes of memory available to this process: the system's, or its cgroup's limit when lower."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # Not every system names these (macOS has no AVPHYS_PAGES).
        available = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # A container's limit (cgroup v2), which /proc/meminfo does not show.
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(available, 0)


def data_size(path: Path, data_format: str) -> int:
    """The file's size as it would be in memory, roughly: bytes on disk, times 4 when compressed."""
    compressed = path.suffix.lower() == ".gz" or data_format == "parquet"
    return path.stat().st_size * (COMPRESSED_EXPANSION if compressed else 1)


def streaming_threshold() -> int:
    """Bytes above which ``streaming="auto"`` streams: ``AUTO_MEMORY_SHARE`` of the available memory."""
    return int(available_memory() * AUTO_MEMORY_SHARE)


def should_stream(config, data, data_format=None, log=log) -> bool:
    """Whether to train from ``data`` (a file, folder or :class:`Dataset`) without loading it (``config.streaming``).

    Refuses ``streaming="on"`` for data that cannot be streamed (a Dataset, a folder per class); ``log`` hears
    why ``auto`` chose streaming.
    """
    if config.streaming == "off":
        return False
    if not isinstance(data, (str, os.PathLike)):
        if config.streaming == "on":
            raise TextclfError("`streaming` 'on' reads a data file; the data given is already in memory. "
                             "Received: streaming='on' with a Dataset")
        return False
    path = Path(data)
    data_format = format_of(path, data_format) if path.exists() else data_format
    if data_format == "folder":
        if config.streaming == "on":
            raise TextclfError(f"{path} is a folder per class, which is read in memory; streaming reads one file "
                             "(CSV, TSV, JSONL, Parquet, fastText, optionally .gz). Use --streaming off or auto")
        return False
    if config.streaming == "on":
        return True
    if not path.is_file():
        return False  # The in-memory reader names the problem.
    size, threshold = data_size(path, data_format), streaming_threshold()
    if size <= threshold:
        return False
    log(f"streaming auto: {path} ({human_bytes(size)} in memory, roughly) is more than the streaming threshold "
        f"({human_bytes(threshold)}, a quarter of the available memory), so it is streamed: a counting pass, "
        "then training from the file (--streaming off reads it into memory)")
    return True


class RowSplit:
    """The validation split of a streamed file: row ``n`` (kept rows after cleaning, from 0) is a validation row
    with probability ``fraction``, decided by ``(seed, n)`` only."""

    def __init__(self, seed: int, fraction: float):
        self.seed = seed
        self.fraction = fraction
        self._block = -1
        self._flags: list[bool] = []

    def is_validation(self, row: int) -> bool:
        block, offset = divmod(row, _SPLIT_BLOCK)
        if block != self._block:
            uniforms = np.random.default_rng([self.seed, 0x5EED, block]).random(_SPLIT_BLOCK)
            self._flags, self._block = (uniforms < self.fraction).tolist(), block
        return self._flags[offset]


@dataclasses.dataclass
class StreamSource:
    """A data file to stream, with how to read it (format, columns, encoding, label separator)."""

    path: Path
    data_format: str | None
    text_column: str
    label_column: str
    encoding: str
    label_sep: str

    @classmethod
    def of(cls, path, config, data_format=None, encoding="utf-8") -> "StreamSource":
        """The source of ``path`` with the columns and separator of ``config``."""
        return cls(Path(path), data_format, config.text_column, config.label_column, encoding, config.label_sep)

    def rows(self, progress=None, on_dropped=None):
        """Cleaned ``(where, text, label)`` rows, as ``load_dataset`` keeps them; ``on_dropped(where)`` hears of
        each row dropped, ``progress`` is as :func:`textclf.data.formats.read_rows`'s."""
        for where, text, label in read_rows(self.path, self.data_format, self.text_column, self.label_column,
                                            self.encoding, self.label_sep, progress):
            row = clean_row(text, label, self.label_column)
            if row is None:
                if on_dropped is not None:
                    on_dropped(where)
                continue
            yield where, row[0], row[1]


@dataclasses.dataclass
class StreamSummary:
    """What the counting pass learned."""

    train_rows: int
    valid_rows: int
    dropped_rows: int  # Rows dropped for an empty text or label (every file).
    dropped_lines: list  # ``(file name, line)`` of the first 10 of them.
    classes: list  # The labels in output order, from every row of the training file (as in memory).
    label_counts: dict  # Training rows per label (multi-label: per label name).
    lengths: dict  # ``{token count (the sequence length): training rows}``.
    fingerprint: str  # SHA-256 of the rows read, in order (identifies the data for a resumed run).
    # ``(label, rows)`` of the longest run of consecutive training rows with one label: longer than the shuffle
    # buffer means batches of mostly one class (a file sorted by label).
    longest_run: tuple = ("", 0)


def _label_names(label: str, config, source, where) -> list[str]:
    if not config.multi_label:
        return [label]
    names = row_labels(label, config.label_sep)
    if not names:
        raise TextclfError(f"{source} line {where}: no label after splitting {label!r} on {config.label_sep!r}")
    return names


class _Reading:
    """The kept rows of one file, with a progress bar, counting dropped rows and hashing what is read."""

    def __init__(self, digest, show_progress: bool):
        self.digest = digest
        self.show_progress = show_progress
        self.dropped_rows = 0
        self.dropped_lines: list = []

    def rows(self, source: StreamSource):
        # Parquet reports rows read, the other formats bytes of the file.
        unit = "rows" if format_of(source.path, source.data_format) == "parquet" else "bytes"
        bar = ProgressBar(f"counting {source.path.name}", total=1, unit=unit) if self.show_progress else None
        count = 0
        progress = None if bar is None else lambda done, total: bar.update(done, total, rows=count)

        def on_dropped(where):
            self.dropped_rows += 1
            if len(self.dropped_lines) < 10:
                self.dropped_lines.append((source.path.name, where))

        for where, text, label in source.rows(progress, on_dropped):
            self.digest.update(f"{text}\x1f{label}\x1e".encode("utf-8", "surrogatepass"))
            count += 1
            yield where, text, label
        if bar is not None:
            bar.close()


def count_pass(config, tokenizer, source: StreamSource, split: RowSplit | None,
               valid_source: StreamSource | None = None, show_progress: bool = True, checks=None) -> StreamSummary:
    """Reads the data once: fits ``tokenizer`` (as ``fit_on_texts`` on the training texts) and counts what
    training needs.

    ``split`` holds out validation rows of ``source``; with ``valid_source`` (``split`` None) that file is read
    after ``source`` for its row count and labels.  Raises ``ValueError`` (naming the file) for fewer than two
    labels, validation labels never seen in training, or no row in one of the parts.  ``checks``
    (a :class:`textclf.data.checks.StreamChecks`) is given every row.
    """
    reading = _Reading(hashlib.sha256(), show_progress)
    labels_seen: dict[str, None] = {}  # Every label of the training file, validation rows included (as in memory).
    label_counts: collections.Counter = collections.Counter()
    lengths: collections.Counter = collections.Counter()
    train_rows = valid_rows = 0
    run_label, run, longest_run = None, 0, ("", 0)
    for number, (where, text, label) in enumerate(reading.rows(source)):
        names = _label_names(label, config, source.path, where)
        labels_seen.update(dict.fromkeys(names))
        held_out = split is not None and split.is_validation(number)
        if checks is not None:
            checks.add(where, text, label, checks.VALIDATION if held_out else checks.TRAINING)
        if held_out:
            valid_rows += 1
            continue
        train_rows += 1
        label_counts.update(names)
        lengths[tokenizer.count_text(text)] += 1
        run = run + 1 if label == run_label else 1
        run_label = label
        if run > longest_run[1]:
            longest_run = (label, run)
    tokenizer.finish_fit()
    classes = sorted_classes(labels_seen)
    if not labels_seen:
        raise TextclfError(f"{source.path} has no usable rows ({reading.dropped_rows} rows dropped for empty or "
                         "missing text or label)")
    if len(classes) < 2:
        raise TextclfError(f"{source.path}: training needs at least two different labels; found only "
                         f"{', '.join(map(repr, classes))}")
    if valid_source is not None:
        valid_labels: set[str] = set()
        for where, text, label in reading.rows(valid_source):
            valid_labels.update(_label_names(label, config, valid_source.path, where))
            if checks is not None:
                checks.add(where, text, label, checks.VALID_FILE)
            valid_rows += 1
        unseen = sorted(valid_labels - set(classes))
        if unseen:
            raise TextclfError(f"{valid_source.path}: labels {', '.join(map(repr, unseen))} do not occur in the "
                             f"training data (training labels: {', '.join(map(repr, classes))})")
    if train_rows == 0:
        raise TextclfError(f"{source.path}: no training rows are left after holding out validation rows; "
                         "add rows or pass a validation file with --valid")
    if valid_rows == 0 and valid_source is not None:
        raise TextclfError(f"{valid_source.path} has no usable rows")
    if valid_rows == 0:
        raise TextclfError(f"Too few rows in {source.path} to hold out a validation set with validation_fraction="
                         f"{config.validation_fraction}; add rows or pass a validation file with --valid")
    return StreamSummary(train_rows, valid_rows, reading.dropped_rows, reading.dropped_lines, classes,
                         dict(label_counts), dict(lengths), reading.digest.hexdigest(), longest_run)
