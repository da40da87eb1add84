"""Live progress: the engine's progress lines as Dagster log messages.

The engine writes progress to a text stream (stderr for the CLI). Handing it
this stream instead turns each complete line into a ``context.log.info`` event,
so rows moved, rates and retries appear live in the Dagster run's log, redacted.
It is not a terminal, so the engine writes periodic full lines, not a redrawn bar.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from dpone_core.redact import redact

__all__ = ["LogStream"]

_MAX_PENDING = 8192


class LogStream(io.TextIOBase):
    """A write-only text stream that logs each line through ``logger.info``."""

    def __init__(self, logger: Any, prefix: str = "") -> None:
        super().__init__()
        self._logger = logger
        self._prefix = prefix
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            # A carriage return redraws a line on a terminal; here it ends one.
            self._pending += text.replace("\r", "\n")
            *lines, self._pending = self._pending.split("\n")
            if len(self._pending) > _MAX_PENDING:  # a line that never ends: log it in pieces
                lines.append(self._pending)
                self._pending = ""
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        self._emit(line)

    def _emit(self, line: str) -> None:
        line = line.strip()
        if line:
            self._logger.info(redact(f"{self._prefix}{line}"))
