"""Progress of a load on the context's stream (stderr), never stdout.

On a terminal a single status line is redrawn in place (``\\r``) at most ten
times a second; on anything else (a log file, a scheduler's captured stderr) a
full line is written at most every two seconds, so logs stay small. Each line
carries the rows moved so far, the rate and the elapsed time. Writing progress
can never fail a load: a closed or broken stream is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

TTY_INTERVAL = 0.1
LOG_INTERVAL = 2.0
_SPINNER = "|/-\\"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _rate(rows: int, elapsed: float) -> str:
    return f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else "- rows/s"


class Progress:
    """Rows-moved reporter for one phase of one load (``label`` names the process)."""

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self._stream = stream
        self._label = label
        self._clock = clock
        self._tty = _isatty(stream) if tty is None else tty
        self._interval = (
            interval if interval is not None else (TTY_INTERVAL if self._tty else LOG_INTERVAL)
        )
        self._started = clock()
        self._last = self._started
        self._rows = 0
        self._phase = "staging"
        self._frames = 0
        self._drawn = False
        self._blind = False

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def add(self, rows: int) -> None:
        """Count ``rows`` more rows; report if the interval has passed."""
        self._rows += rows
        self.tick()

    def heartbeat(self) -> None:
        """Report elapsed time while one statement moves rows that are counted at its end."""
        self._blind = True
        try:
            self.tick()
        finally:
            self._blind = False

    def tick(self) -> None:
        """Report if the interval has passed (no new rows)."""
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._report(now)

    def phase(self, name: str) -> None:
        """Switch to another phase (``publishing``): redrawn at once on a terminal, and
        logged when the load has already been reporting (so a long publish is visible)."""
        self._phase = name
        now = self._clock()
        if self._tty or now - self._started >= self._interval:
            self._last = now
            self._report(now)

    def finish(self, message: str) -> None:
        """End the live line (if any) and write one final line."""
        if self._drawn:
            self._write("\n")
            self._drawn = False
        self._write(f"dpone: {self._label}: {message}\n")

    def _line(self, now: float) -> str:
        elapsed = now - self._started
        if self._blind:
            return f"{self._label}: {self._phase} (rows counted at the end), {elapsed:.1f}s elapsed"
        return (
            f"{self._label}: {self._phase} {self._rows:,} rows, "
            f"{_rate(self._rows, elapsed)}, {elapsed:.1f}s elapsed"
        )

    def _report(self, now: float) -> None:
        if self._tty:
            frame = _SPINNER[self._frames % len(_SPINNER)]
            self._frames += 1
            self._write(f"\r{frame} {self._line(now)}\x1b[K")
            self._drawn = True
        else:
            self._write(f"dpone: {self._line(now)}\n")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass
