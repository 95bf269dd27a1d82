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
def logging_level(level: int, which: logging.Logger = logger):
    """The ``textclf`` logger (or ``which``) at ``level`` meanwhile, then at its level before, whatever happens."""
    previous = which.level
    which.setLevel(level)
    try:
        yield
    finally:
        which.setLevel(previous)


@contextlib.contextmanager
def tensorflow_info_hidden():
    """TensorFlow's Python logger above INFO meanwhile: where it shows INFO (Jupyter, IPython), each export printed
    "INFO:tensorflow:Assets written to ..." twice."""
    import tensorflow as tf

    tensorflow_logger = tf.get_logger()
    with logging_level(max(tensorflow_logger.getEffectiveLevel(), logging.WARNING), tensorflow_logger):
        yield
