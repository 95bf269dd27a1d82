"""Preparing a run's data: read it (or count it, streamed), split it, fit the tokenizer, resolve the settings.

Both ways end in one :class:`Prepared`.  Streamed (:func:`prepare_streamed`) differs because the rows are never
held: the validation split is per row, not stratified (:class:`textclf.data.streaming.RowSplit`);
``split_mode="auto"`` is decided on the first 10,000 rows; the per-epoch shuffle is a buffer of 16,384 rows.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os

import numpy as np

from textclf.config import TrainConfig
from textclf.data.checks import StreamChecks, check_in_memory
from textclf.data.counts import max_len_of
from textclf.data.dataset import Dataset, load_dataset, sorted_classes, stratified_split
from textclf.data.fingerprints import HashSet
from textclf.data.streaming import SPLIT_MODE_SAMPLE_ROWS, RowSplit, StreamSource, count_pass
from textclf.data.labels import label_sets
from textclf.log import log
from textclf.text.rules import cjk_share
from textclf.text.tokenizer import Tokenizer
from textclf.training.rows import TokenizedRows, fingerprint_of
from textclf.training.streamed_rows import SHUFFLE_BUFFER, StreamedRows
from textclf.errors import TextclfError


def task_of(config: TrainConfig, classes) -> str:
    """``multilabel``, ``binary`` or ``multiclass``."""
    return "multilabel" if config.multi_label else "binary" if len(classes) == 2 else "multiclass"


def new_tokenizer(config: TrainConfig) -> Tokenizer:
    """An unfitted tokenizer with the config's rules."""
    rules = config.text_rules()
    return Tokenizer(num_words=config.num_words, filters=rules.filters, lower=rules.lower, split=rules.split,
                     char_level=rules.char_level, oov_token=config.oov_token, cjk=rules.cjk)


def resolve_split_mode(config: TrainConfig, texts) -> TrainConfig:
    """``split_mode="auto"`` becomes ``cjk`` when most texts are mostly CJK, else ``word`` (and says so)."""
    if config.split_mode != "auto":
        return config
    share = cjk_share(texts)
    mode = "cjk" if share > 0.5 else "word"
    if mode == "cjk":
        log(f"split_mode auto: {share:.0%} of training texts are mostly Chinese/Japanese/Korean, "
            "so each CJK character is a token (Latin words and numbers stay whole)")
    return config.replace(split_mode=mode)


@dataclasses.dataclass
class Prepared:
    """A run's data, ready to train on.

    ``config`` has ``split_mode`` and ``max_len`` resolved; ``fingerprint`` identifies both parts' rows in order
    (checkpoints); ``run_info`` is what ``run.json`` says about the data (its checks in ``data_checks``);
    ``fingerprints`` the training texts' :class:`textclf.data.fingerprints.HashSet`.
    """

    tokenizer: Tokenizer
    config: TrainConfig
    classes: list
    train_count: int
    valid_count: int
    fingerprint: str
    run_info: dict
    fingerprints: HashSet | None = None

    def parts(self, tokenizer: Tokenizer, config: TrainConfig):
        """``(train, valid)`` :class:`textclf.training.rows.Rows` encoded with ``tokenizer`` and ``config``."""
        raise NotImplementedError


@dataclasses.dataclass
class InMemory(Prepared):
    """Rows held in memory; ``train`` and ``valid`` are the split's :class:`Dataset` parts; ``positions``: each of
    their rows' place in the user's rows (the training data's, then a validation file's), training rows first."""

    train: Dataset = None
    valid: Dataset = None
    positions: np.ndarray = None

    def parts(self, tokenizer, config):
        return (TokenizedRows(tokenizer, self.train.texts, self.train.labels, config, self.classes),
                TokenizedRows(tokenizer, self.valid.texts, self.valid.labels, config, self.classes))


@dataclasses.dataclass
class Streamed(Prepared):
    """Rows read from ``source`` (and ``valid_source``) every epoch."""

    source: StreamSource = None
    valid_source: StreamSource | None = None
    split: RowSplit | None = None
    summary: object = None  # textclf.data.streaming.StreamSummary

    def parts(self, tokenizer, config):
        summary, classes = self.summary, self.classes
        train = StreamedRows(self.source, "train", self.split, summary.train_rows, tokenizer, config, classes,
                             summary.lengths, summary.fingerprint, summary.label_counts)
        # With a validation file, `split` is None: every row of it is a validation row.
        valid = StreamedRows(self.source if self.valid_source is None else self.valid_source, "valid", self.split,
                             summary.valid_rows, tokenizer, config, classes, fingerprint=summary.fingerprint)
        return train, valid


def _first_labels(classes, shown: int = 10) -> str:
    """The first ``shown`` class names, and "…" where there are more."""
    return ", ".join(classes[:shown]) + (", …" if len(classes) > shown else "")


def check_labels(train_data: Dataset, valid_data: Dataset, config: TrainConfig | None = None) -> list[str]:
    """The classes, refusing a single label or validation labels never trained on."""
    def names(data):
        if config is not None and config.multi_label:
            return [name for names in label_sets(data.labels, config.label_sep, data.path) for name in names]
        return data.labels

    classes = sorted_classes(names(train_data))
    if len(classes) < 2:
        raise TextclfError(f"{train_data.path}: training needs at least two different labels; found only "
                         f"{', '.join(map(repr, classes))}")
    unseen = sorted(set(names(valid_data)) - set(classes))
    if unseen:
        raise TextclfError(f"{valid_data.path}: labels {', '.join(map(repr, unseen))} do not occur in the training "
                         f"data (training labels: {', '.join(map(repr, classes))})")
    return classes


def read_dataset(source, config: TrainConfig, data_format=None, encoding="utf-8") -> Dataset | None:
    """``source`` read as a :class:`Dataset` with ``config``'s columns, dropped rows logged; ``None`` stays ``None``."""
    if source is None or isinstance(source, Dataset):
        return source
    loaded = load_dataset(source, config.text_column, config.label_column, data_format, encoding, config.label_sep)
    for kind, items, detail in (("empty files", loaded.dropped_files, ""),
                                ("rows with empty or missing text or label", loaded.dropped_lines, "lines ")):
        if items:
            shown = ", ".join(map(str, items[:10])) + (" ..." if len(items) > 10 else "")
            log(f"{source}: dropped {len(items)} {kind} ({detail}{shown})")
    return loaded


def prepare_in_memory(config: TrainConfig, data, valid=None, data_format=None, encoding="utf-8") -> InMemory:
    """Reads the data, makes the split every command uses for these settings, fits the tokenizer.

    ``train`` and ``baseline`` both call this, so the TF-IDF baseline is scored on exactly the rows the model is
    validated on.  ``valid=None`` holds out a stratified ``config.validation_fraction`` of ``data``.
    """
    all_train = read_dataset(data, config, data_format, encoding)
    given_valid = read_dataset(valid, config, data_format, encoding)
    classes = check_labels(all_train, given_valid if given_valid is not None else all_train, config)
    split = None if given_valid is not None else stratified_split(all_train.labels, config.validation_fraction,
                                                                  config.seed)
    train_data, valid_data, checks, fingerprints, positions = check_in_memory(config, all_train, given_valid, split,
                                                                              classes)
    log(checks.summary())
    log(f"{len(train_data)} training rows, {len(valid_data)} validation rows, "
        f"{len(classes)} labels ({task_of(config, classes)}): {_first_labels(classes)}")
    config = resolve_split_mode(config, train_data.texts)
    if config.wide == "auto":
        config = config.replace(wide="none" if config.multi_label else "tfidf")
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(train_data.texts)
    lengths = collections.Counter(map(len, tokenizer.texts_to_sequences_generator(train_data.texts)))
    config = config.replace(max_len=max_len_of(config, lengths))
    run_info = {"train_file": all_train.path, "valid_file": given_valid.path if given_valid is not None else None,
                "train_rows": len(train_data), "valid_rows": len(valid_data),
                "dropped_rows": len(all_train.dropped_lines) + (len(given_valid.dropped_lines) if given_valid else 0),
                "data_checks": checks.to_dict()}
    fingerprint = fingerprint_of([*train_data.texts, "\x1d", *valid_data.texts],
                                 [*train_data.labels, "", *valid_data.labels])
    return InMemory(tokenizer, config, classes, len(train_data), len(valid_data), fingerprint, run_info,
                    fingerprints, train=train_data, valid=valid_data, positions=positions)


def prepare_streamed(config: TrainConfig, data, valid=None, data_format=None, encoding="utf-8") -> Streamed:
    """Runs the counting pass over ``data`` (and ``valid``, a file or ``None``) and resolves the settings it decides."""
    if valid is not None and not isinstance(valid, (str, os.PathLike)):
        raise TextclfError("A streamed run reads its validation data from a file too; got an in-memory Dataset "
                         "for `valid` (pass a file, or streaming='off')")
    source = StreamSource.of(data, config, data_format, encoding)
    valid_source = StreamSource.of(valid, config, data_format, encoding) if valid is not None else None
    split = None if valid_source is not None else RowSplit(config.seed, config.validation_fraction)
    if config.split_mode == "auto":
        # The tokenizer's rules must be known before the counting pass: decide on the first rows.
        first = itertools.islice((text for _, text, _ in source.rows()), SPLIT_MODE_SAMPLE_ROWS)
        config = resolve_split_mode(config, first)
        log(f"split_mode auto: {config.split_mode}, decided on the first {SPLIT_MODE_SAMPLE_ROWS:,} rows (streaming)")
    if config.wide == "tfidf":
        log("wide tfidf: the branch is fitted on the rows in memory; this run streams, so it trains without it")
    config = config.replace(wide="none")
    tokenizer = new_tokenizer(config)
    checks = StreamChecks(config)
    summary = count_pass(config, tokenizer, source, split, valid_source, checks=checks)
    config = config.replace(max_len=max_len_of(config, summary.lengths))
    if summary.dropped_rows:
        shown = ", ".join(f"{name} line {line}" for name, line in summary.dropped_lines)
        log(f"dropped {summary.dropped_rows} rows with empty or missing text or label ({shown}"
            f"{' ...' if summary.dropped_rows > len(summary.dropped_lines) else ''})")
    label, run = summary.longest_run
    if run > SHUFFLE_BUFFER:
        log(f"warning: {run:,} consecutive training rows have the label {label!r}, more than the shuffle buffer "
            f"({SHUFFLE_BUFFER:,} rows): batches will hold mostly one class. Shuffle the file first "
            "(e.g. `shuf`, keeping a CSV header on top), or train with --streaming off")
    classes = summary.classes
    found = checks.report(source.path, valid_source.path if valid_source is not None else None, classes,
                          summary.label_counts)
    log(found.summary())
    held_out = ("from " + str(valid_source.path) if valid_source is not None
                else f"each row with probability {config.validation_fraction}, not stratified")
    log(f"{summary.train_rows} training rows, {summary.valid_rows} validation rows ({held_out}), "
        f"{len(classes)} labels ({task_of(config, classes)}): {_first_labels(classes)}")
    run_info = {"train_file": str(source.path),
                "valid_file": str(valid_source.path) if valid_source is not None else None,
                "train_rows": summary.train_rows, "valid_rows": summary.valid_rows,
                "dropped_rows": summary.dropped_rows, "streaming": True, "data_checks": found.to_dict()}
    return Streamed(tokenizer, config, classes, summary.train_rows, summary.valid_rows,
                    f"{summary.fingerprint}:streamed", run_info, checks.fingerprints, source=source,
                    valid_source=valid_source,
                    split=split, summary=summary)


def prepare(config: TrainConfig, data, valid=None, data_format=None, encoding="utf-8") -> Prepared:
    """:func:`prepare_streamed` when ``config.streaming`` is "on", else :func:`prepare_in_memory`."""
    make = prepare_streamed if config.streaming == "on" else prepare_in_memory
    return make(config, data, valid, data_format, encoding)
