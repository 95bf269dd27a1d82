"""A progress bar on standard error (standard output is for results) for long passes over a file.

On a terminal it redraws one line at most every half second; in a log it writes a line at every tenth of the
way, so logs stay short.
"""

from __future__ import annotations

import sys
import time

from textclf.log import showing_progress

_UNITS = ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB"))


def human_bytes(count: float) -> str:
    """``1.5 GB``, ``12.0 MB``, ``900 B``: a byte count for people (powers of 1024)."""
    for size, name in _UNITS:
        if count >= size:
            return f"{count / size:.1f} {name}"
    return f"{int(count)} B"


class ProgressBar:
    """``title [=====>     ] 45%  1.0/2.2 GB  38 MB/s  9,876 rows  ETA 31 s``.

    ``total`` is the amount at the end, in ``unit`` (``bytes`` or ``rows``); ``stream`` defaults to standard error.

    Example:
        >>> bar = ProgressBar("counting data.csv", total=2_000_000)
        >>> bar.update(1_000_000, rows=9_000)
        >>> bar.close()
    """

    interval = 0.5  # Seconds between redraws on a terminal.

    def __init__(self, title: str, total: int, unit: str = "bytes", stream=None):
        self.title = title
        self.total = max(int(total), 1)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.last_drawn = 0.0
        self.last_tenth = -1
        self.done = 0
        self.rows = None
        self.shown = showing_progress()  # Not under textclf --quiet, nor in a silent TextClassifier.

    def _amount(self, value: float) -> str:
        return human_bytes(value) if self.unit == "bytes" else f"{int(value):,}"

    def line(self) -> str:
        """The bar's text as it is now."""
        share = min(self.done / self.total, 1.0)
        filled = int(share * 30)
        bar = "=" * filled + (">" if filled < 30 else "") + " " * (29 - filled)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.title} [{bar}] {share:4.0%}", f"{self._amount(self.done)}/{self._amount(self.total)}",
                 f"{self._amount(rate)}/s"]
        if self.rows is not None and self.unit == "bytes":
            parts.append(f"{self.rows:,} rows")
        if 0 < share < 1 and rate > 0:
            parts.append(f"ETA {(self.total - self.done) / rate:.0f} s")
        return "  ".join(parts)

    def update(self, done: int, total: int | None = None, rows: int | None = None) -> None:
        """Records progress (``total`` when known only now, ``rows`` read beside a byte count); redraws in time."""
        self.done = done
        if total is not None:
            self.total = max(int(total), 1)
        if rows is not None:
            self.rows = rows
        if not self.shown:
            return
        now = time.perf_counter()
        if self.terminal:
            if now - self.last_drawn >= self.interval:
                self.last_drawn = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
            return
        tenth = int(10 * min(done / self.total, 1.0))
        if tenth > self.last_tenth:
            self.last_tenth = tenth
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draws the final state and ends the line."""
        if not self.shown:
            return
        if self.terminal:
            self.stream.write("\r" + self.line() + "\n")
        elif self.last_tenth < 10:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
