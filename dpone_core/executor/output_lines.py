"""A command's output cut into redacted whole lines for a watching observer.

A read from a pipe ends anywhere: inside a line, inside a UTF-8 sequence, inside a
secret. Text is passed on only up to the last line break that has arrived, so a
secret within one line is always redacted whole; a secret that spans lines is also
masked line by line (:func:`dpone_core.redact.register_secret`), so its first lines
are masked even when the rest comes in a later read. A line longer than
``line_bytes`` that does not end is passed on in pieces, cut only where
:func:`dpone_core.redact.safe_cut` says no secret or password shape can be split
(memory stays bounded: at twice ``line_bytes`` a piece is cut even inside an
unquoted ``password=`` value that has not ended, the one unbounded shape).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from dpone_core.executor.command_observer import LINE_BYTES
from dpone_core.redact import redact, safe_cut

__all__ = ["OutputLines"]


class OutputLines:
    """Feed bytes in; whole redacted lines (each ending with ``\\n``) come out to ``emit``.

    An ``emit`` that raises is never called again: a failing observer must not stop
    the pipe from being drained.
    """

    def __init__(self, emit: Callable[[str], None], *, line_bytes: int = LINE_BYTES) -> None:
        self._emit: Callable[[str], None] | None = emit
        self._line_bytes = line_bytes
        self._pending = ""  # decoded text after the last line break passed on
        # Incremental: a read that ends inside a UTF-8 sequence is decoded with the next.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> None:
        if self._emit is None:
            return
        self._pending += self._decoder.decode(chunk)
        end = self._pending.rfind("\n") + 1
        if end:
            block, self._pending = self._pending[:end], self._pending[end:]
            self._send(block)
        # A line that does not end: pass it on in pieces of at most line_bytes.
        while len(self._pending) * 4 >= self._line_bytes and self._emit is not None:
            encoded = self._pending.encode("utf-8")
            if len(encoded) < self._line_bytes:
                return
            fits = len(encoded[: self._line_bytes].decode("utf-8", errors="ignore"))
            cut = safe_cut(self._pending, fits)
            if cut == 0:
                if len(encoded) < 2 * self._line_bytes:
                    return  # a match may be growing at the start: wait for more text
                cut = fits  # bounded memory: an unbroken "password=" run of 64 KiB is cut
            piece, self._pending = self._pending[:cut], self._pending[cut:]
            self._send(piece)

    def close(self) -> None:
        """The stream ended: pass on what is left, with a line break if it has none.

        Nothing more can arrive, so the rest is redacted whole and only then cut into
        pieces of at most ``line_bytes`` (cutting masked text unmasks nothing).
        """
        rest = redact(self._pending + self._decoder.decode(b"", final=True))
        self._pending = ""
        while rest and self._emit is not None:
            encoded = rest.encode("utf-8")
            fits = len(encoded[: self._line_bytes].decode("utf-8", errors="ignore")) or len(rest)
            self._send(rest[:fits], redacted=True)
            rest = rest[fits:]

    def _send(self, text: str, *, redacted: bool = False) -> None:
        emit = self._emit
        if not text or emit is None:
            return
        if not redacted:
            text = redact(text)
        try:
            emit(text if text.endswith("\n") else text + "\n")
        except Exception:
            self._emit = None  # a failing observer never stops the drain
