"""Shell words that survive quotes, spaces, ``$``, backticks, newlines, ``{{`` and ``%``.

Shell text is produced per argument, never by pasting strings together:
:func:`shlex.quote` where a word may span lines, bash ``$'...'`` quoting where a
snippet must stay on one physical line (crontab, Airflow's Jinja).
"""

from __future__ import annotations

import re
import shlex

__all__ = [
    "check_text",
    "env_comment",
    "force_quote",
    "jinja_inert_word",
    "needs_ansi_c",
    "one_line_word",
]

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_text(value: str, what: str) -> str:
    """``value`` if a command line can carry it; ``ValueError`` naming ``what`` otherwise."""
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character, which no command line can carry")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError(f"{what} is not valid Unicode (it contains a lone surrogate)")
    return value


def needs_ansi_c(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _ansi_c_quote(text: str) -> str:
    """bash ``$'...'`` quoting; the result holds no control characters."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}
    out = []
    for ch in text:
        if ch in named:
            out.append(named[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def force_quote(text: str) -> str:
    """Always-quoted shell word: ``'...'`` (or ``$'...'`` for control characters)."""
    if needs_ansi_c(text):
        return _ansi_c_quote(text)
    return "'" + text.replace("'", "'\"'\"'") + "'"


def one_line_word(text: str) -> str:
    """A shell word that never spans lines (bash ``$'...'`` when it must)."""
    return _ansi_c_quote(text) if needs_ansi_c(text) else shlex.quote(text)


def jinja_inert_word(text: str) -> str:
    """A bash word in which no Jinja parser sees a tag.

    Every ``{`` is written as the shell escape ``\\{`` and the text after it is
    always quoted, so the result never contains ``{{``, ``{%`` or ``{#``. Control
    characters use bash ``$'...'`` quoting, because Jinja rewrites ``\\r\\n``.
    """
    if "{" not in text:
        return one_line_word(text)
    pieces = text.split("{")
    out = [one_line_word(pieces[0]) if pieces[0] else ""]
    for piece in pieces[1:]:
        out.append("\\{")
        if piece:
            out.append(force_quote(piece))
    return "".join(out)


def env_comment(env_refs: dict[str, str], where: str) -> list[str]:
    """Python comment lines naming the variables a run reads (names, never values)."""
    if not env_refs:
        return []
    lines = [f"# Environment variables the run reads (set them {where};"]
    lines.append("# their values never appear here):")
    return lines + [f"#   {env_name}: {desc!r}" for env_name, desc in env_refs.items()]
