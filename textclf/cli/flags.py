"""The ``textclf`` command's flags: one parser, every ``TrainConfig`` setting a flag generated from the dataclass.

The config stays the one place that defines the settings, their choices and their help.  Precedence: defaults <
``--config FILE`` < flags (:func:`config_from_args`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

import textclf
from textclf.config import TrainConfig
from textclf.data.formats import FORMAT_NAMES
from textclf.errors import TextclfError


def _optional(kind):
    """An argparse ``type``: ``kind(text)``, or ``None`` for "none", "null" or "auto"."""
    def parse(text: str):
        if text.lower() in ("none", "null", "auto"):
            return None
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what} or 'none', got {text!r}") from None
    return parse


# The ``type`` and metavar of a flag by its setting's type hint (bool and Literal settings need neither);
# the one ``str | None`` setting is ``embeddings``, a file.
_FLAG_TYPES = {int: (int, "N"), float: (float, "X"), str: (str, "TEXT"), int | None: (_optional(int), "N|none"),
               float | None: (_optional(float), "X|none"), str | None: (str, "FILE")}


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("settings (TrainConfig; defaults in brackets)")
    for field in dataclasses.fields(TrainConfig):
        hint, choices = hints[field.name], TrainConfig.choices(field.name)
        kwargs = {"default": None, "dest": field.name,
                  "help": f"{TrainConfig.help(field.name)} [{field.default!r}]".replace("``", "").replace("%", "%%")}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif choices is not None:  # argparse lists the Literal's values and refuses others.
            kwargs["choices"] = choices
        else:
            kwargs["type"], kwargs["metavar"] = _FLAG_TYPES[hint]
        group.add_argument("--" + field.name.replace("_", "-"), **kwargs)


DATA_HELP = ("labelled file or folder: .csv, .tsv, .jsonl, .parquet, .ft (fastText), any of them .gz, "
             "or DATA/<label>/*.txt")
FORMAT_HELP = f"format of the data instead of guessing from the extension: {', '.join(FORMAT_NAMES)}"


def _add_reading_flags(parser: argparse.ArgumentParser, format_flag: str = "--format") -> None:
    """``--format`` (or ``format_flag``) and ``--encoding``."""
    # No argparse choices: an unknown format is reported with the file it was meant for, like every data error.
    parser.add_argument(format_flag, dest="data_format", metavar="FORMAT", help=FORMAT_HELP)
    parser.add_argument("--encoding", default="utf-8", metavar="NAME",
                        help="encoding of text files, e.g. latin-1, cp1252, utf-16 [utf-8, BOM or not]")


def build_parser() -> argparse.ArgumentParser:
    # No prefix matching (allow_abbrev): `--lr 0.1` was read as --lr-schedule, and a new flag could change what an
    # old abbreviation means.
    parser = argparse.ArgumentParser(prog="textclf", description="LSTM/GRU text classification with raw-text export.",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {textclf.__version__}")
    common = _common_flags()
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, **kwargs):
        return subparsers.add_parser(name, parents=[common], allow_abbrev=False, **kwargs)

    # In this order in --help.
    for add_command in (_add_train, _add_baseline, _add_tune, _add_export, _add_predict, _add_check_export,
                        _add_explain, _add_evaluate):
        add_command(command)
    return parser


def _common_flags() -> argparse.ArgumentParser:
    """The parent parser of the flags every command takes: --verbose or --quiet."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("--verbose", action="store_true",
                          help="also show TensorFlow's start-up messages (CUDA probing, CPU features)")
    loudness.add_argument("--quiet", action="store_true",
                          help="show only errors on standard error: no progress, notes or warnings (results still "
                               "go to standard output)")
    return common


VALID_HELP = "validation file (default: stratified split of DATA)"


def _training_command(command, name, summary, valid, config="JSON file of settings (flags override it)",
                      output="export base folder [saved_models/<DATA name>]"):
    """A command that trains on DATA, with its data, reading and output flags (settings flags come last)."""
    parser = command(name, help=summary)
    parser.add_argument("data", metavar="DATA", help=f"training data: {DATA_HELP}")
    parser.add_argument("--valid", metavar="DATA", help=valid)
    _add_reading_flags(parser)
    parser.add_argument("--config", metavar="FILE", help=config)
    parser.add_argument("--output", metavar="DIR", help=output)
    return parser


def _add_train(command) -> None:
    train = _training_command(command, "train", "train on labelled data and export for TF Serving", VALID_HELP)
    train.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs to DIR")
    train.add_argument("--restart", action="store_true",
                       help="discard the checkpoint of an interrupted run in --output and start fresh "
                            "(by default the run resumes from it)")
    _add_setting_flags(train)


def _add_baseline(command) -> None:
    _add_setting_flags(_training_command(
        command, "baseline",
        "train textclf and TF-IDF + logistic regression on the same rows; compare them on held-out rows",
        "test file (default: a stratified --validation-fraction of DATA, held out)"))


def _add_tune(command) -> None:
    tune = _training_command(
        command, "tune", "search arch, units, wide, dropout, learning rate and max_len for a time budget; train and "
        "export the best", VALID_HELP, config="JSON file of the settings not searched (flags override it)",
        output="export base folder; the search state goes to DIR/tune [saved_models/<DATA name>]")
    tune.add_argument("--budget", default="20m", help="no new trial starts after this long: 90s, 20m, 1.5h [20m]")
    tune.add_argument("--max-trials", type=int, default=50,
                      help="at most this many finished trials in all (a failed one does not count) [50]")
    tune.add_argument("--restart", action="store_true",
                      help="discard an earlier search in DIR/tune made on other data or settings (by default it is "
                           "refused) and the checkpoint of an interrupted final run in --output (by default resumed); "
                           "a search on the same data and settings is always resumed")
    _add_setting_flags(tune)


def _add_export(command) -> None:
    export = command("export", help="export a run folder as the next SavedModel version")
    export.add_argument("run", metavar="RUN", help="run folder (saved_models/NAME/runs/<timestamp>)")
    export.add_argument("--output", metavar="DIR", required=True, help="export base folder (saved_models/NAME)")


def _add_predict(command) -> None:
    predict = command("predict", help="classify texts with an export")
    predict.add_argument("model", metavar="MODEL", help="export folder (base or version) or run folder")
    predict.add_argument("texts", metavar="TEXT", nargs="*", help="texts to classify")
    predict.add_argument("--input", metavar="FILE",
                         help="file of texts: plain lines (.txt), .csv, .tsv, .jsonl, .parquet, .ft, any of them .gz, "
                              "or a folder per class; '-' reads standard input (plain lines unless --input-format)")
    predict.add_argument("--text-column", default="text", help="column of the text in --input [text]")
    # --format already names the output format of predict.
    _add_reading_flags(predict, format_flag="--input-format")
    predict.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format [jsonl]")
    predict.add_argument("--top-k", type=int, default=3, help="labels listed per text [3]")
    predict.add_argument("--batch-size", type=int, default=1024, help="texts per model call [1024]")


def _add_check_export(command) -> None:
    check = command(
        "check-export", help="load and run an export as TF Serving does (C++ loader); exit 2 if it would not serve")
    check.add_argument("model", metavar="DIR", help="export folder (base: the highest version, or one version)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_explain(command) -> None:
    explain = command("explain", help="show how much each word pushed a prediction")
    explain.add_argument("model", metavar="MODEL", help="export folder (base or version) or run folder")
    explain.add_argument("text", metavar="TEXT", help="the text to explain")
    explain.add_argument("--html", metavar="FILE", help="also write a highlighted HTML page")
    explain.add_argument("--json", action="store_true", help="print the weights as JSON instead of colours")


def _add_evaluate(command) -> None:
    evaluate = command("evaluate", help="accuracy, macro-F1, report and confusion matrix on labelled data")
    evaluate.add_argument("model", metavar="MODEL", help="export folder (base or version) or run folder")
    evaluate.add_argument("data", metavar="DATA", help=DATA_HELP)
    _add_reading_flags(evaluate)
    evaluate.add_argument("--text-column", default="text", help="column of the text [text]")
    evaluate.add_argument("--label-column", default="label", help="column of the label [label]")
    evaluate.add_argument("--output", metavar="FILE", help="write the metrics as JSON (report.json)")
    evaluate.add_argument("--plot", metavar="FILE",
                          help="confusion-matrix PNG [confusion_matrix.png beside --output, when given]")
    evaluate.add_argument("--normalize", action="store_true", help="plot row-normalised shares instead of counts")
    evaluate.add_argument("--mistakes", type=int, metavar="N",
                          help="also list the N most confident mistakes (highest predicted score among wrong "
                               "predictions) and the most confused class pairs, here and in --output")


def config_from_args(args) -> TrainConfig:
    """Defaults, then ``--config FILE``, then the flags given."""
    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    changes = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
               if getattr(args, field.name) is not None}
    try:
        return config.replace(**changes)
    except ValueError as error:
        # Name the flag the user typed, not only the setting.
        match = re.search(r"`([a-z_]+)`", str(error))
        if match and match.group(1) in changes:
            raise TextclfError(f"argument --{match.group(1).replace('_', '-')}: {error}") from None
        raise
