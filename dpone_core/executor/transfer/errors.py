"""Operational failures of a transfer and how they are worded.

User errors found against the database (a missing table, key or cursor column)
are :class:`~dpone_core.errors.ManifestError`; everything else that stops a load
(a refused connection, a constraint violation, a lock timeout) becomes a failed
result whose message is one readable, redacted line.
"""

from __future__ import annotations

from dpone_core.errors import TransferFailed as TransferFailed
from dpone_core.redact import redact

__all__ = ["TransferFailed", "describe_exception"]

_MAX_MESSAGE = 600


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line, from the driver's error when SQLAlchemy wrapped it."""
    if isinstance(exc, TransferFailed):
        return str(exc)
    inner: BaseException = getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split())
    # SQLAlchemy appends a link to its error catalogue; it says nothing about the cause.
    text = text.split(" (Background on this error at:")[0]
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    name = type(inner).__name__
    return redact(f"{name}: {text}" if text else name)
