"""The one ``log`` of textclf: progress messages on standard error, keeping standard output for results."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """Writes ``message`` and a newline to standard error, flushed at once."""
    print(message, file=sys.stderr, flush=True)
