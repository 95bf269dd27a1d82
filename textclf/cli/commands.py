"""What each ``textclf`` command does once parsed: load → build → train → export, or load → predict.

Each ``run_*`` takes the parsed ``argparse.Namespace`` and raises ``TextclfError`` (or ``OSError``) for input a user
can fix; :func:`textclf.cli.main` turns those into one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import shutil
import sys
from pathlib import Path

import textclf
from textclf.cli.flags import config_from_args
from textclf.data.formats import FORMAT_NAMES, decode
from textclf.errors import TextclfError
from textclf.native_lines import discarded


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
    from textclf.evaluation.baseline import (BASELINE, STRONGEST, comparison_table, held_out_split,
                                             run_baseline as fit_baseline, run_strongest)
    from textclf.evaluation.metrics import classification_metrics
    from textclf.serve.predict import load
    from textclf.training.prepare import check_labels, read_dataset
    from textclf.training.run import train

    config = config_from_args(args)
    if config.multi_label:
        raise TextclfError("The TF-IDF baseline is single-label; run `textclf baseline` without --multi-label")
    if config.streaming == "on":
        raise TextclfError("The TF-IDF baseline holds the data in memory; run `textclf baseline` without --streaming on")
    data = read_dataset(args.data, config, args.data_format, args.encoding)
    # Test rows that neither side trains on, nor textclf early-stops on (it holds out its own validation rows).
    if args.valid is not None:
        rest, test = data, read_dataset(args.valid, config, args.data_format, args.encoding)
    else:
        rest, test = held_out_split(data, config.validation_fraction, config.seed)
    classes = check_labels(rest, test, config)
    result = train(rest, config, output=_output_of(args))
    predicted = load(result.export_dir).labels(test.texts)
    rows = {f"textclf ({result.config.arch}, pooling={result.config.pooling})":
            classification_metrics(test.labels, predicted, classes),
            BASELINE: fit_baseline(rest, test, classes, result.config.split_mode != "word", config.seed)}
    print("fitting the strongest linear baseline (16 choices x 5 folds, chosen by cross-validated macro-F1)")
    rows[STRONGEST] = run_strongest(rest, test, classes, config.seed)
    (result.run_dir / "baseline.json").write_text(json.dumps(
        {name: {key: metrics[key] for key in ("accuracy", "macro_f1", "chosen") if key in metrics}
         for name, metrics in rows.items()}, indent=2))
    print(f"{args.data}: all trained on {len(rest)} rows (textclf early-stopping on {result.metrics['support']} "
          f"of them), all tested on {len(test)} held-out rows")
    print(comparison_table(rows))
    chosen = rows[STRONGEST]["chosen"]
    print(f"{STRONGEST}: {chosen['features']}, C={chosen['C']:g}, class weight {chosen['class_weight'] or 'none'}"
          + (f" (fixed: {chosen['fixed']})" if "fixed" in chosen else ""))


def run_tune(args) -> None:
    from textclf.training.tune import parse_budget, trials_table, tune

    result, trials = tune(args.data, config_from_args(args), output=_output_of(args), budget=parse_budget(args.budget),
                          max_trials=args.max_trials, valid=args.valid, data_format=args.data_format,
                          encoding=args.encoding, restart=args.restart)
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
        raise TextclfError("Give texts as arguments or --input FILE, not both")
    if not args.input and not args.texts:
        raise TextclfError("Nothing to classify: give one or more TEXT arguments or --input FILE")
    if args.data_format is not None and args.data_format not in FORMAT_NAMES:
        # Checked here, where the flag's name is known: the readers name train's --format.
        raise TextclfError(f"Unknown format {args.data_format!r} for {args.input or 'the TEXT arguments'}; expected one "
                         f"of {', '.join(FORMAT_NAMES)} (--input-format)")
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
        for number, text in enumerate(args.texts, start=1):
            # The shell hands over bytes; Python keeps undecodable ones as lone surrogates that no model can read.
            if any("\udc80" <= character <= "\udcff" for character in text):
                raw = os.fsencode(text)
                raise TextclfError(f"TEXT argument {number} is not valid UTF-8 ({raw[:40]!r}); give the text in UTF-8, "
                                 "or put it in a file and pass --input FILE --encoding NAME")
        yield args.texts


class _CsvRows:
    r"""``writerow`` as ``csv.writer``'s, rows ending in ``"\n"``, and a field holding ``"\r"`` or ``"\n"`` quoted.

    ``csv.writer(lineterminator="\n")`` quotes a field only for the characters of its line terminator, so a text
    holding a lone ``"\r"`` came out bare and split the row when read back (every CSV reader ends lines at it).
    """

    def __init__(self, stream):
        self._stream, self._buffer = stream, io.StringIO()
        self._writer = csv.writer(self._buffer)  # "\r\n" rows: both characters make a field quoted.

    def writerow(self, row) -> None:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(row)
        self._stream.write(self._buffer.getvalue()[:-2] + "\n")


def run_predict(args) -> None:
    from textclf.serve.predict import load

    for flag, value in (("top-k", args.top_k), ("batch-size", args.batch_size)):
        if value <= 0:
            raise TextclfError(f"argument --{flag}: must be a positive integer. Received: {value}")
    batches = _text_batches_for_predict(args)
    # Errors in the first batch are reported before the model is loaded; a bad row further into a file stops
    # the command (exit status 2) after the predictions of the batches before it were printed.
    first = next(batches)
    with discarded(args.verbose):
        classifier = load(args.model)
    multilabel = classifier.threshold is not None
    writer = _CsvRows(sys.stdout) if args.format == "csv" else None
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


def _check_folder_of(flag: str, path) -> None:
    """Refuses a file to write whose folder is missing, before any work; the folder is not created, since a
    mistyped path would leave stray folders."""
    folder = Path(path).parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise TextclfError(f"argument {flag}: folder {folder} {problem}; create it or choose another. "
                           f"Received: {flag} {path}")


def run_evaluate(args) -> None:
    from textclf.evaluation.metrics import format_metrics
    from textclf.evaluation.mistakes import check_mistakes, format_mistakes
    from textclf.serve.predict import evaluate, load

    for flag, path in (("--output", args.output), ("--plot", args.plot)):
        if path:
            _check_folder_of(flag, path)  # Before loading the model and predicting every row.
    if args.mistakes is not None:
        check_mistakes(args.mistakes)
    with discarded(args.verbose):
        classifier = load(args.model)
    metrics = evaluate(classifier, args.data, args.text_column, args.label_column,
                       data_format=args.data_format, encoding=args.encoding, mistakes=args.mistakes)
    print(format_metrics(metrics))
    if args.mistakes is not None:
        print("\n" + format_mistakes(metrics, shutil.get_terminal_size().columns))
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nreport written to {args.output}")
    plot = args.plot or (Path(args.output).with_name("confusion_matrix.png") if args.output else None)
    if plot:
        from textclf.evaluation.reports import plot_confusion

        plot_confusion(metrics, plot, normalize=args.normalize)
        print(f"confusion matrix drawn in {plot}")


# Commands that load their model quietly themselves: an export runs through TensorFlow's C API library and never
# imports TensorFlow's Python package (7-10 s of a short `textclf predict`; textclf.serve.predict).
LOAD_THEIR_MODEL = {"predict", "evaluate"}

COMMANDS = {
    "train": run_train, "baseline": run_baseline, "tune": run_tune, "export": run_export,
    "predict": run_predict, "explain": run_explain, "check-export": run_check_export, "evaluate": run_evaluate,
}


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines discarded."""
    if "tensorflow" in sys.modules:
        return
    with discarded():
        import tensorflow as tf

        from textclf.training.setup import one_thread_per_op_on_cpu

        one_thread_per_op_on_cpu()  # Before the runtime starts (below).
        if not os.environ.get("TF_CONFIG"):
            # Device set-up prints its CUDA lines here, not at the first op.  Not in a cluster: collective
            # ops (strategy multiworker) must be configured before the devices are.
            tf.config.list_logical_devices()
