"""The ``textclf`` command: train, export, predict, evaluate.

Every ``TrainConfig`` setting is a ``train`` flag, generated from the dataclass so the config stays the one place
that defines them.  Precedence: defaults < ``--config FILE`` < flags.  Bad input exits with status 2 and a
message naming the argument, file or line.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import itertools
import json
import os
import re
import sys
import tempfile
import typing
from pathlib import Path

import textclf
from textclf.config import TrainConfig
from textclf.data.formats import FORMAT_NAMES, decode

EXIT_USAGE = 2


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
    parser = argparse.ArgumentParser(prog="textclf", description="LSTM/GRU text classification with raw-text export.")
    common = argparse.ArgumentParser(add_help=False)  # Flags every command takes.
    common.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's start-up messages (CUDA probing, CPU features)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, **kwargs):
        return subparsers.add_parser(name, parents=[common], **kwargs)

    def training_command(name, summary, valid, config="JSON file of settings (flags override it)",
                         output="export base folder [saved_models/<DATA name>]"):
        """A command that trains on DATA, with its data, reading and output flags (settings flags come last)."""
        parser = command(name, help=summary)
        parser.add_argument("data", metavar="DATA", help=f"training data: {DATA_HELP}")
        parser.add_argument("--valid", metavar="DATA", help=valid)
        _add_reading_flags(parser)
        parser.add_argument("--config", metavar="FILE", help=config)
        parser.add_argument("--output", metavar="DIR", help=output)
        return parser

    valid_help = "validation file (default: stratified split of DATA)"
    train = training_command("train", "train on labelled data and export for TF Serving", valid_help)
    train.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs to DIR")
    train.add_argument("--restart", action="store_true",
                       help="discard the checkpoint of an interrupted run in --output and start fresh "
                            "(by default the run resumes from it)")
    _add_setting_flags(train)

    _add_setting_flags(training_command(
        "baseline", "train textclf and TF-IDF + logistic regression on the same rows; compare them on held-out rows",
        "test file (default: a stratified --validation-fraction of DATA, held out)"))

    tune = training_command(
        "tune", "search arch, units, wide, dropout, learning rate and max_len for a time budget; train and export "
        "the best", valid_help, config="JSON file of the settings not searched (flags override it)",
        output="export base folder; the search state goes to DIR/tune [saved_models/<DATA name>]")
    tune.add_argument("--budget", default="20m", help="no new trial starts after this long: 90s, 20m, 1.5h [20m]")
    tune.add_argument("--max-trials", type=int, default=50, help="at most this many trials in all [50]")
    _add_setting_flags(tune)

    export = command("export", help="export a run folder as the next SavedModel version")
    export.add_argument("run", metavar="RUN", help="run folder (saved_models/NAME/runs/<timestamp>)")
    export.add_argument("--output", metavar="DIR", required=True, help="export base folder (saved_models/NAME)")

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

    check = command(
        "check-export", help="load and run an export as TF Serving does (C++ loader); exit 2 if it would not serve")
    check.add_argument("model", metavar="DIR", help="export folder (base: the highest version, or one version)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    explain = command("explain", help="show how much each word pushed a prediction")
    explain.add_argument("model", metavar="MODEL", help="export folder (base or version) or run folder")
    explain.add_argument("text", metavar="TEXT", help="the text to explain")
    explain.add_argument("--html", metavar="FILE", help="also write a highlighted HTML page")
    explain.add_argument("--json", action="store_true", help="print the weights as JSON instead of colours")

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
    return parser


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
            raise ValueError(f"argument --{match.group(1).replace('_', '-')}: {error}") from None
        raise


def _output_of(args) -> Path:
    """``--output``, or ``saved_models/<name of the data file without extensions>``."""
    return Path(args.output) if args.output else Path("saved_models") / Path(args.data).name.split(".")[0]


def _summary(result, **extra) -> str:
    """The JSON line a training command ends with."""
    return json.dumps({
        # A non-chief worker of a multi-worker run writes no run folder and no export.
        "run": str(result.run_dir) if result.run_dir else None,
        "export": str(result.export_dir) if result.export_dir else None, **extra,
        "accuracy": round(result.metrics["accuracy"], 4), "macro_f1": round(result.metrics["macro_f1"], 4),
    })


def run_train(args) -> None:
    from textclf.training.run import train

    result = train(args.data, config_from_args(args), valid=args.valid, output=_output_of(args),
                   tensorboard=args.tensorboard, data_format=args.data_format, encoding=args.encoding,
                   restart=args.restart, started_at=textclf.IMPORTED_AT)
    print(_summary(result))


def run_baseline(args) -> None:
    from textclf.evaluation.baseline import BASELINE, comparison_table, held_out_split, run_baseline as fit_baseline
    from textclf.evaluation.metrics import classification_metrics
    from textclf.serve.predict import load
    from textclf.training.prepare import check_labels, read_dataset
    from textclf.training.run import train

    config = config_from_args(args)
    if config.multi_label:
        raise ValueError("The TF-IDF baseline is single-label; run `textclf baseline` without --multi-label")
    if config.streaming == "on":
        raise ValueError("The TF-IDF baseline holds the data in memory; run `textclf baseline` without --streaming on")
    data = read_dataset(args.data, config, args.data_format, args.encoding)
    # Test rows that neither side trains on, nor textclf early-stops on (it holds out its own validation rows).
    if args.valid is not None:
        rest, test = data, read_dataset(args.valid, config, args.data_format, args.encoding)
    else:
        rest, test = held_out_split(data, config.validation_fraction, config.seed)
    classes = check_labels(rest, test, config)
    result = train(rest, config, output=_output_of(args))
    predicted = [prediction.label for prediction in load(result.export_dir).predict(test.texts)]
    rows = {f"textclf ({result.config.arch}, pooling={result.config.pooling})":
            classification_metrics(test.labels, predicted, classes),
            BASELINE: fit_baseline(rest, test, classes, result.config.split_mode != "word", config.seed)}
    (result.run_dir / "baseline.json").write_text(json.dumps(
        {name: {key: metrics[key] for key in ("accuracy", "macro_f1")} for name, metrics in rows.items()}, indent=2))
    print(f"{args.data}: both trained on {len(rest)} rows (textclf early-stopping on {result.metrics['support']} "
          f"of them), both tested on {len(test)} held-out rows")
    print(comparison_table(rows))


def run_tune(args) -> None:
    from textclf.training.tune import parse_budget, trials_table, tune

    result, trials = tune(args.data, config_from_args(args), output=_output_of(args), budget=parse_budget(args.budget),
                          max_trials=args.max_trials, valid=args.valid, data_format=args.data_format,
                          encoding=args.encoding)
    print(trials_table(trials))
    print(_summary(result, trials=len(trials)))


def run_export(args) -> None:
    from textclf.serve.export import export_run

    print(export_run(args.run, args.output))


def _text_batches_for_predict(args):
    """Lists of at most ``--batch-size`` texts: a file is read batch by batch, so memory stays bounded."""
    from textclf.data.dataset import dataset_from_text, text_batches
    from textclf.data.progress import ProgressBar

    if args.input and args.texts:
        raise ValueError("Give texts as arguments or --input FILE, not both")
    if not args.input and not args.texts:
        raise ValueError("Nothing to classify: give one or more TEXT arguments or --input FILE")
    if args.input == "-":
        buffer = getattr(sys.stdin, "buffer", None)  # A text stream with no bytes underneath is read as it is.
        text = decode(buffer.read(), "<stdin>", args.encoding) if buffer is not None else sys.stdin.read()
        texts = dataset_from_text(text, "<stdin>", args.data_format or "lines", text_column=args.text_column).texts
        yield from (texts[start : start + args.batch_size] for start in range(0, len(texts), args.batch_size))
    elif args.input:
        # A progress bar (bytes read) on a terminal only: logs and pipes get just the predictions.
        bar = ProgressBar(f"classifying {Path(args.input).name}", total=1) if sys.stderr.isatty() else None
        with contextlib.closing(bar) if bar else contextlib.nullcontext():
            yield from text_batches(args.input, args.batch_size, args.text_column, args.data_format, args.encoding,
                                    progress=bar.update if bar else None)
    else:
        yield args.texts


def run_predict(args) -> None:
    from textclf.serve.predict import load

    for flag, value in (("top-k", args.top_k), ("batch-size", args.batch_size)):
        if value <= 0:
            raise ValueError(f"argument --{flag}: must be a positive integer. Received: {value}")
    batches = _text_batches_for_predict(args)
    # Errors in the first batch are reported before the model is loaded; a bad row further into a file stops
    # the command (exit status 2) after the predictions of the batches before it were printed.
    first = next(batches)
    with _native_start_up_lines_discarded(args.verbose):
        classifier = load(args.model)
    multilabel = classifier.threshold is not None
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
    if writer:
        writer.writerow(["text", "label", "score"] + (["labels"] if multilabel else [])
                        + [f"score_{name}" for name in classifier.classes])
    # Each batch is printed before the next is read: output starts at once and nothing piles up in memory.
    for texts in itertools.chain([first], batches):
        for prediction in classifier.predict(texts, batch_size=args.batch_size):
            if writer:
                writer.writerow([prediction.text, prediction.label, f"{prediction.score:.6f}"]
                                + (["|".join(prediction.labels)] if multilabel else [])
                                + [f"{prediction.scores[name]:.6f}" for name in classifier.classes])
                continue
            print(json.dumps({
                "text": prediction.text, "label": prediction.label, "score": round(prediction.score, 6),
                "top_k": [{"label": item["label"], "score": round(item["score"], 6)}
                          for item in prediction.top_k(args.top_k)],
                **({"labels": prediction.labels} if prediction.labels is not None else {}),
            }, ensure_ascii=False))


def run_check_export(args) -> None:
    from textclf.serve.check import check_report

    print(check_report(args.model, as_json=args.json))


def run_explain(args) -> None:
    from textclf.serve.explain import explain, html_page, terminal_line
    from textclf.serve.predict import load

    explanation = explain(load(args.model), args.text)
    if args.json:
        print(json.dumps(explanation.to_dict(), ensure_ascii=False))
    else:
        # Colour codes on a terminal only: a file or a pipe gets the plain sentence.
        print(terminal_line(explanation, colour=sys.stdout.isatty()))
        for token, weight in sorted(zip(explanation.tokens, explanation.weights), key=lambda item: -abs(item[1]))[:10]:
            print(f"  {weight:+.4f}  {token}")
    if args.html:
        Path(args.html).write_text(html_page(explanation), encoding="utf-8")
        print(f"explanation written to {args.html}")


def run_evaluate(args) -> None:
    from textclf.evaluation.metrics import format_metrics
    from textclf.serve.predict import evaluate, load

    with _native_start_up_lines_discarded(args.verbose):
        classifier = load(args.model)
    metrics = evaluate(classifier, args.data, args.text_column, args.label_column,
                       data_format=args.data_format, encoding=args.encoding)
    print(format_metrics(metrics))
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nreport written to {args.output}")
    plot = args.plot or (Path(args.output).with_name("confusion_matrix.png") if args.output else None)
    if plot:
        from textclf.evaluation.reports import plot_confusion_matrix

        plot_confusion_matrix(metrics["confusion_matrix"], metrics["classes"], plot, normalize=args.normalize)
        print(f"confusion matrix drawn in {plot}")


# Commands that load their model quietly themselves: an export runs through TensorFlow's C API library and never
# imports TensorFlow's Python package (7-10 s of a short `textclf predict`; textclf.serve.predict).
LOAD_THEIR_MODEL = {"predict", "evaluate"}

COMMANDS = {
    "train": run_train, "baseline": run_baseline, "tune": run_tune, "export": run_export,
    "predict": run_predict, "explain": run_explain, "check-export": run_check_export, "evaluate": run_evaluate,
}


@contextlib.contextmanager
def _native_start_up_lines_discarded(verbose: bool = False):
    """Discards what C++ writes to file descriptor 2 meanwhile (TensorFlow's CUDA probing, CPU features, absl).

    C++ writes those lines before ``TF_CPP_MIN_LOG_LEVEL`` applies, so fd 2 points at a temporary file; should
    the block fail, what it wrote is shown with the error.  ``verbose`` keeps them.
    """
    if verbose:
        yield
        return
    sys.stderr.flush()  # TF_CPP_MIN_LOG_LEVEL is set by textclf/__init__.py.
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines discarded."""
    if "tensorflow" in sys.modules:
        return
    with _native_start_up_lines_discarded():
        import tensorflow as tf

        from textclf.training.setup import one_thread_per_op_on_cpu

        one_thread_per_op_on_cpu()  # Before the runtime starts (below).
        if not os.environ.get("TF_CONFIG"):
            # Device set-up prints its CUDA lines here, not at the first op.  Not in a cluster: collective
            # ops (strategy multiworker) must be configured before the devices are.
            tf.config.list_logical_devices()


def _error_message(error: BaseException) -> str | None:
    """A one-line message for an error a user can fix (bad file, full disk, too large a model), else None."""
    if isinstance(error, ValueError):
        return str(error)
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else "MemoryError"
        return (f"out of memory ({detail}); lower --units, --embedding-dim, --num-words, --max-len or --batch-size")
    return None


def main(argv=None) -> int:
    """Entry point of the ``textclf`` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(item.startswith("-") for item in extra):
        # ``predict MODEL --top-k 2 "text"``: argparse gives the TEXT list its (empty) share before the options and
        # leaves the later texts over.
        args.texts = list(args.texts) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.verbose and args.command not in LOAD_THEIR_MODEL:
        _import_tensorflow_quietly()
    try:
        COMMANDS[args.command](args)
    except BrokenPipeError:
        # The reader went away (``textclf predict ... | head -1``): stop quietly, as Python's docs advise;
        # stdout goes to /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # noqa: BLE001 - everything a user can fix becomes one line and exit 2.
        message = _error_message(error)
        if message is None:
            raise
        print(f"textclf {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
