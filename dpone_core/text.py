"""Untrusted text made safe to show on one line of a terminal or a log.

Run ids, keys, selectors and manifest field names come from users and
schedulers. Printed raw, a newline in one would forge a second log line and an
ESC would drive the operator's terminal. :func:`escape_control` writes every
control character as a visible Python-style escape instead. It is for display
only (a backslash is left as it is, so it is not meant to be reversible);
file names use :mod:`dpone_core.naming`.

Imports nothing, so every layer may use it.
"""

from __future__ import annotations

__all__ = ["escape_control"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _is_control(ch: str) -> bool:
    code = ord(ch)
    # C0, DEL, C1 (which includes NEL, U+0085), and the Unicode line/paragraph separators.
    return code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` with every control character (newline, ESC, NUL, C1, U+2028/9) escaped."""
    if not any(_is_control(ch) for ch in text):
        return text
    return "".join(_escape(ch) if _is_control(ch) else ch for ch in text)
