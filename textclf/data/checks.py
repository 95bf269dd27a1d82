"""Checks of the data before training, reported as one log summary and kept in ``run.json`` (``data_checks``).

* duplicates: rows of the training file whose text repeats an earlier row's;
* conflicts: texts the training file gives different labels;
* validation overlap: validation rows whose text is a training row's.  They are removed from the validation rows,
  so the validation score is not inflated, except where a class would be left without any validation row: then
  that class's rows are kept and a warning names it (every validation row repeating training rows keeps them all);
* classes with no validation row (too few rows for the split to hold one out, or absent from ``--valid``).

Texts are compared as :func:`textclf.data.fingerprints.normalised` makes them, by 64-bit hash, confirmed on the
texts in memory.  A streamed run (:class:`StreamChecks`) has no texts to confirm with, and reads its validation
rows from the file each epoch, so it counts the overlap without removing it; it checks the first
:data:`STREAM_CHECKED_ROWS` rows (21 bytes each).
"""

from __future__ import annotations

import collections
import dataclasses
from array import array

import numpy as np

from textclf.data.fingerprints import HashSet, normalised, text_hash, text_hashes
from textclf.data.labels import row_labels

SHOWN = 5  # Items of each kind the log shows.
LISTED = 100  # Items of each kind run.json lists (the counts are of all).
STREAM_CHECKED_ROWS = 1 << 23


@dataclasses.dataclass
class DataChecks:
    """What the checks found; ``where`` values are line numbers (a folder: files; data in memory: row numbers)."""

    source: str
    rows: int
    word: str = "line"  # How ``where`` values are named: "line", or "row" for data given in memory.
    duplicates: list = dataclasses.field(default_factory=list)  # {"text", "lines"} of the first LISTED texts.
    duplicate_rows: int = 0  # Rows repeating an earlier row's text.
    duplicate_texts: int = 0
    conflicts: list = dataclasses.field(default_factory=list)  # {"text", "lines", "labels"}.
    conflict_texts: int = 0
    valid_source: str = ""
    overlap: int = 0  # Validation rows whose text is a training row's.
    overlap_lines: list = dataclasses.field(default_factory=list)  # Of the valid_source, the first LISTED.
    removed: int = 0
    kept_classes: list = dataclasses.field(default_factory=list)
    without_validation: list = dataclasses.field(default_factory=list)  # {"class", "training_rows"}.
    streamed: bool = False
    skipped: list = dataclasses.field(default_factory=list)  # What a streamed run could not check.

    @property
    def warns(self) -> bool:
        return bool(self.conflict_texts or self.overlap > self.removed or self.without_validation)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """The log's lines; they start with ``warning:`` when something makes the validation scores misleading."""
        lines = [f"{'warning: ' if self.warns else ''}data checks of {self.source} ({_count(self.rows, 'row')}):"]
        verb = "repeats" if self.duplicate_rows == 1 else "repeat"
        lines.append("  duplicates: " + (f"{_count(self.duplicate_rows, 'row')} {verb} an earlier row's text "
                                         f"({_count(self.duplicate_texts, 'text')}):" + _items(self, self.duplicates)
                                         if self.duplicate_rows else "none"))
        lines.append("  conflicts: " + (f"{_count(self.conflict_texts, 'text')} with different labels:"
                                        + _items(self, self.conflicts) if self.conflict_texts else "none"))
        lines.append("  validation rows repeating a training text: " + _overlap_line(self))
        if self.without_validation:
            shown = ", ".join(f"{item['class']!r} ({_count(item['training_rows'], 'training row')})"
                              for item in self.without_validation[:SHOWN])
            more = f" and {len(self.without_validation) - SHOWN} more" if len(self.without_validation) > SHOWN else ""
            lines.append(f"  classes with no validation row: {shown}{more}; nothing to validate them on (add rows of "
                         "them, or pass --valid with rows of them)")
        lines += [f"  skipped (streamed): {item}" for item in self.skipped]
        return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _places(checks: DataChecks, wheres) -> str:
    """``lines 3, 7 and 9`` (a folder's files by name)."""
    names = [str(where) for where in wheres]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if all(isinstance(where, (int, np.integer)) for where in wheres):
        return f"{checks.word}{'s' if len(names) > 1 else ''} {joined}"
    return joined


def _items(checks: DataChecks, items: list) -> str:
    """The first :data:`SHOWN` items, one a line."""
    shown = []
    for item in items[:SHOWN]:
        labels = f" ({', '.join(map(repr, item['labels']))})" if "labels" in item else ""
        text = f": {item['text']!r}" if item.get("text") is not None else ""
        shown.append("\n    " + _places(checks, item["lines"]) + labels + text)
    total = checks.conflict_texts if items is checks.conflicts else checks.duplicate_texts
    more = f"\n    and {total - SHOWN:,} more (run.json's data_checks lists up to {LISTED})" if total > SHOWN else ""
    return "".join(shown) + more


def _overlap_line(checks: DataChecks) -> str:
    if not checks.overlap:
        return "none"
    where = (_places(checks, checks.overlap_lines[:SHOWN]) + (" ..." if checks.overlap > SHOWN else "")
             + f" of {checks.valid_source}")
    if checks.streamed:
        return f"{checks.overlap:,}, not removed ({where}): the validation scores overstate the model"
    if checks.removed == checks.overlap:
        return f"{checks.overlap:,}, removed ({where})"
    kept = checks.overlap - checks.removed
    return (f"{checks.overlap:,}, {checks.removed:,} removed ({where}); {kept:,} kept for "
            f"{', '.join(map(repr, checks.kept_classes))}, whose every validation row repeats one (nothing else to "
            "validate them on): their scores overstate the model")


def excerpt(text: str, limit: int = 60) -> str:
    """``text`` normalised, cut to ``limit`` characters."""
    text = normalised(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def repeated_groups(hashes: np.ndarray, texts=None) -> list[list[int]]:
    """Indices of rows sharing a text, each group ascending, groups by first row; equal hashes are confirmed on
    ``texts`` (when given)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(ordered)].astype(np.int64)
    groups = []
    for start, end in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist()):
        members = order[start:end].tolist()
        if texts is None:
            groups.append(members)
            continue
        by_text: dict[str, list[int]] = {}
        for index in members:
            by_text.setdefault(normalised(texts[index]), []).append(index)
        groups.extend(group for group in by_text.values() if len(group) > 1)
    return sorted(groups, key=lambda group: group[0])


def label_key(label: str, config) -> str:
    """A row's label as conflicts compare it: a multi-label row's set of labels, in one order."""
    return config.label_sep.join(sorted(row_labels(label, config.label_sep))) if config.multi_label else label


def _names(label: str, config) -> list[str]:
    return row_labels(label, config.label_sep) if config.multi_label else [label]


def find_repeats(checks: DataChecks, groups, in_file: int, label, place, is_valid, texts=None) -> list[int]:
    """Fills ``checks``' duplicates and conflicts (rows below ``in_file``); returns the validation rows that repeat
    a training row's text.  ``label(i)`` is a row's :func:`label_key`, ``place(i)`` where it is."""
    overlapping = []
    for group in groups:
        members = [index for index in group if index < in_file]
        if len(members) > 1:
            item = {"text": None if texts is None else excerpt(texts[members[0]]), "lines": list(map(place, members))}
            checks.duplicate_rows += len(members) - 1
            checks.duplicate_texts += 1
            if checks.duplicate_texts <= LISTED:
                checks.duplicates.append(item)
            if len({label(index) for index in members}) > 1:
                checks.conflict_texts += 1
                if checks.conflict_texts <= LISTED:
                    checks.conflicts.append({**item, "labels": [label(index) for index in members]})
        valid = [index for index in group if is_valid[index]]
        if valid and len(valid) < len(group):
            overlapping.extend(valid)
    return sorted(overlapping)


def kept_validation(valid_rows, overlapping, labels, config) -> tuple[list[int], list[str]]:
    """``(validation rows kept, classes whose overlapping rows were kept)``: an overlapping row is removed unless
    a class of its would then have no validation row."""
    overlapping = set(overlapping)
    counts = collections.Counter(name for index in valid_rows for name in _names(labels[index], config))
    repeats = collections.Counter(name for index in overlapping for name in _names(labels[index], config))
    emptied = {name for name, count in repeats.items() if count == counts[name]}
    kept = [index for index in valid_rows
            if index not in overlapping or emptied.intersection(_names(labels[index], config))]
    return kept, sorted(emptied)


def without_validation(classes, valid_labels, train_counts: dict, config) -> list[dict]:
    """``{"class", "training_rows"}`` of each class no validation row has (``train_counts``: rows per class)."""
    present = {name for label in valid_labels for name in _names(label, config)}
    return [{"class": name, "training_rows": train_counts.get(name, 0)} for name in classes if name not in present]


def check_in_memory(config, data, valid, split, classes):
    """Checks ``data`` and its validation rows: ``valid`` (a Dataset) or ``split``, ``(train, valid)`` indices.

    Returns ``(training rows, validation rows without those removed, DataChecks, HashSet of the training texts,
    positions)``; ``positions``: each returned row's place among ``data``'s rows then ``valid``'s, training rows
    first (the wide branch's cross-validation folds follow the file's order, as scikit-learn's do).
    """
    count = len(data)
    texts = data.texts if valid is None else data.texts + valid.texts
    labels = data.labels if valid is None else data.labels + valid.labels
    if valid is None:
        train_rows, valid_rows = (np.asarray(part, dtype=np.int64) for part in split)
    else:
        train_rows, valid_rows = np.arange(count), np.arange(count, len(texts))
    is_valid = np.zeros(len(texts), dtype=bool)
    is_valid[valid_rows] = True

    def place(index):
        lines, offset = (data.lines, 0) if index < count else (valid.lines, count)
        return lines[index - offset] if len(lines) else index - offset + 1

    hashes = text_hashes(texts)
    keys = [label_key(label, config) for label in labels]
    checks = DataChecks(data.path, count, "line" if len(data.lines) else "row",
                        valid_source=(data if valid is None else valid).path)
    overlapping = find_repeats(checks, repeated_groups(hashes, texts), count, keys.__getitem__, place, is_valid,
                               texts)
    kept, checks.kept_classes = kept_validation(valid_rows.tolist(), overlapping, labels, config)
    checks.overlap, checks.removed = len(overlapping), len(valid_rows) - len(kept)
    checks.overlap_lines = [place(index) for index in overlapping[:LISTED]]
    train_counts = collections.Counter(name for index in train_rows.tolist() for name in _names(labels[index], config))
    checks.without_validation = without_validation(classes, [labels[index] for index in kept], train_counts, config)
    fingerprints = HashSet()
    fingerprints.add(hashes[train_rows])
    positions = np.concatenate([train_rows, np.asarray(kept, dtype=np.int64)])
    if valid is None:
        return data.subset(train_rows), data.subset(kept), checks, fingerprints, positions
    return data, valid.subset([index - count for index in kept]), checks, fingerprints, positions


class StreamChecks:
    """The checks of a streamed run, fed each row by the counting pass (``part``: :data:`TRAINING`,
    :data:`VALIDATION` for a validation row of the training file, :data:`VALID_FILE` for a row of ``--valid``)."""

    TRAINING, VALIDATION, VALID_FILE = 0, 1, 2

    def __init__(self, config):
        self.config = config
        self.hashes, self.wheres, self.labels, self.parts = array("Q"), array("q"), array("l"), array("b")
        self.label_ids: dict[str, int] = {}
        self.rows = self.unchecked = 0
        self.valid_labels: collections.Counter = collections.Counter()
        self.fingerprints = HashSet()
        self._training = array("Q")  # Training hashes not yet in ``fingerprints`` (added in blocks).

    def add(self, where, text: str, label: str, part: int) -> None:
        hashed = text_hash(text)
        if part == self.TRAINING:
            self._training.append(hashed)
            if len(self._training) >= 1 << 16:
                self._flush()
        else:
            self.valid_labels[label] += 1
        self.rows += part != self.VALID_FILE
        if len(self.hashes) >= STREAM_CHECKED_ROWS:
            self.unchecked += 1
            return
        self.hashes.append(hashed)
        self.wheres.append(where)
        self.parts.append(part)
        self.labels.append(self.label_ids.setdefault(label_key(label, self.config), len(self.label_ids)))

    def _flush(self) -> None:
        self.fingerprints.add(np.frombuffer(self._training, dtype=np.uint64).copy())
        self._training = array("Q")

    def report(self, source, valid_source, classes, train_counts: dict) -> DataChecks:
        """The checks' findings, once every row was added (``train_counts``: training rows per class)."""
        self._flush()
        parts = np.frombuffer(self.parts, dtype=np.int8) if len(self.parts) else np.zeros(0, np.int8)
        hashes = np.frombuffer(self.hashes, dtype=np.uint64) if len(self.hashes) else np.zeros(0, np.uint64)
        keys = list(self.label_ids)
        checks = DataChecks(str(source), self.rows, streamed=True,
                            valid_source=str(source if valid_source is None else valid_source))
        overlapping = find_repeats(checks, repeated_groups(hashes), int(np.count_nonzero(parts != self.VALID_FILE)),
                                   lambda index: keys[self.labels[index]], self.wheres.__getitem__, parts != 0)
        checks.overlap, checks.overlap_lines = len(overlapping), [self.wheres[index] for index in overlapping[:LISTED]]
        checks.without_validation = without_validation(classes, self.valid_labels, train_counts, self.config)
        checks.skipped += ["removing validation rows that repeat a training text (a streamed run reads them from "
                           "the file each epoch): they are counted",
                           "texts beside their line numbers, and equal hashes confirmed on the texts (a streamed run "
                           "keeps no text)"]
        if self.unchecked:
            checks.skipped.append(f"the {self.unchecked:,} rows after the first {STREAM_CHECKED_ROWS:,}, for "
                                  "duplicates, conflicts and validation overlap (21 bytes a row)")
        return checks
