"""The one ``log`` of textclf: progress messages through the ``textclf`` logger, on standard error, keeping
standard output for results.

Messages show by default, in the command line and the Python API alike: the logger has a handler of its own
(the bare message, on ``sys.stderr``) and does not pass records on to the root logger, so a program that
configures logging gets no second copy.  ``logging.getLogger("textclf").setLevel(logging.WARNING)`` silences the
progress messages and keeps the warnings; ``textclf --quiet`` keeps only errors.
"""

from __future__ import annotations

import contextlib
import logging
import sys

logger = logging.getLogger("textclf")


class _StandardErrorHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a message comes (pytest's capture, ``contextlib.redirect_stderr``),
    not as it was when textclf was imported."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


if not logger.handlers:  # A handler the program gave the logger before importing textclf is kept alone.
    logger.addHandler(_StandardErrorHandler())
    logger.propagate = False
if logger.level == logging.NOTSET:  # A level set before textclf was imported stands.
    logger.setLevel(logging.INFO)


def log(message: str) -> None:
    """Logs ``message`` on the ``textclf`` logger: at WARNING when it starts with "warning:", else at INFO."""
    logger.log(logging.WARNING if message.startswith("warning:") else logging.INFO, message)


def showing_progress() -> bool:
    """Whether progress (bars, per-epoch lines) is wanted: the ``textclf`` logger shows INFO messages."""
    return logger.isEnabledFor(logging.INFO)


@contextlib.contextmanager
def logging_level(level: int):
    """The ``textclf`` logger at ``level`` meanwhile, then at its level before, whatever happens inside."""
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
