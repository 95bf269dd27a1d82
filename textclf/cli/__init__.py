"""The ``textclf`` command: train, baseline, tune, export, predict, check-export, explain, evaluate.

``main`` only parses (:mod:`textclf.cli.flags`) and calls the command (:mod:`textclf.cli.commands`).  Bad input
exits with status 2 and a message naming the argument, file or line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

from textclf.cli.commands import COMMANDS, LOAD_THEIR_MODEL, import_tensorflow_quietly
from textclf.cli.flags import build_parser, config_from_args
from textclf import native_lines
from textclf.errors import TextclfError
from textclf.log import logging_level

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "config_from_args", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C.


def _error_message(error: BaseException) -> str | None:
    """A one-line message for an error a user can fix (bad file, full disk, too large a model), else None: any
    other exception, a plain ``ValueError`` included, is a bug in textclf and keeps its traceback (exit 1)."""
    if isinstance(error, TextclfError):
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
    args = _parse(argv)
    # Scoped, not process-wide: main also runs inside other programs (and tests) that keep logging after it.
    with logging_level(logging.ERROR if args.quiet else logging.INFO), warnings.catch_warnings(), (
            native_lines.shown() if args.verbose else contextlib.nullcontext()):
        if args.quiet:
            warnings.simplefilter("ignore")
        return _run(args)


def _parse(argv):
    """The parsed command line; argparse exits with status 2 on a bad one."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(item.startswith("-") for item in extra):
        # ``predict MODEL --top-k 2 "text"``: argparse gives the TEXT list its (empty) share before the options and
        # leaves the later texts over.
        args.texts = list(args.texts) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _run(args) -> int:
    """Runs the parsed command; returns the exit status."""
    try:
        if not args.verbose and args.command not in LOAD_THEIR_MODEL:
            import_tensorflow_quietly()
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        # Ctrl-C is the user's choice, not a bug: no traceback.  An interrupted training keeps its checkpoint
        # (training.run releases .in-progress on any exception), so the same command resumes it.
        print(f"textclf {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
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

