"""``COPY ... FROM STDIN`` text of a whole batch of rows, formatted column by column.

psycopg's ``Copy.write_row`` formats one row per Python call: at a million rows
that is most of the Python time of a load into PostgreSQL. A batch of rows from
a source that only yields the basic values (``int``, ``float``, ``str``,
``bytes``, ``None``: every SQLite row, see ``Dialect.yields_basic_values``) is
formatted here instead, one column at a time with C-level builtins (``map``,
``str.join``/``split``/``replace``), so the Python interpreter runs a handful of
statements per column instead of one call per value.

The text is exactly what ``write_row`` sends for the same values (the tests
compare the two byte for byte), so the server parses every value as before:

=========  =================================================================
value      text
=========  =================================================================
``None``   ``\\N``
``int``    ``str(value)``
``float``  ``str(value)`` (``inf``, ``-inf``, ``nan`` included)
``str``    the text with ``\\b \\t \\n \\v \\f \\r \\\\`` escaped; a NUL is refused
           (PostgreSQL text cannot hold it), as psycopg refuses it
``bytes``  ``\\\\x`` and the hex digits (the ``bytea`` hex form, backslash escaped)
``bool``   ``t`` / ``f``
=========  =================================================================

Any other type raises TypeError: such a source must use ``write_row``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

__all__ = ["NUL_IN_TEXT", "format_rows"]

NULL = "\\N"
#: psycopg's wording, so a refused value reads the same as before.
NUL_IN_TEXT = "PostgreSQL text fields cannot contain NUL (0x00) bytes"
_SEPARATOR = "\x00"  # cannot occur in a value: a text with a NUL is refused first
#: Replaced in this order (the backslash first, so escapes are not escaped twice).
_ESCAPES = (
    ("\\", "\\\\"),
    ("\b", "\\b"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\v", "\\v"),
    ("\f", "\\f"),
    ("\r", "\\r"),
)

Column = Sequence[Any]


#: Types whose text is ``str(value)``, which ``%s`` formatting gives as well.
_STR_TYPES = frozenset({int, float, str})
#: Characters that a value's text must not contain for the text to need no escaping.
_SPECIAL = ("\\", "\r", "\b", "\v", "\f", _SEPARATOR)


def format_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """The COPY text of ``rows`` (tuples of one width; every row ends with a newline).

    The common batch (only integers, floats and texts without characters to escape)
    is one ``template % row`` per row, in C; any other batch is formatted column by
    column.
    """
    if not rows:
        return ""
    width = len(rows[0])
    if width and set(map(type, chain.from_iterable(rows))) <= _STR_TYPES:
        text = "".join(map(_template(width).__mod__, rows))
        if _needs_no_escaping(text, len(rows), width):
            return text
    columns = [_format_column(column) for column in zip(*rows, strict=True)]
    if not columns:
        return "\n" * len(rows)
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


@lru_cache(maxsize=64)
def _template(width: int) -> str:
    return "\t".join(["%s"] * width) + "\n"


def _needs_no_escaping(text: str, rows: int, width: int) -> bool:
    """True when the only tabs and newlines of ``text`` are the separators we put there."""
    return (
        text.count("\n") == rows
        and text.count("\t") == rows * (width - 1)
        and not any(char in text for char in _SPECIAL)
    )


def _escape_texts(values: Column) -> list[str]:
    """Escape many texts at once: join them, replace, split again."""
    joined = _SEPARATOR.join(values)
    if joined.count(_SEPARATOR) != len(values) - 1:
        raise ValueError(NUL_IN_TEXT)
    for char, escaped in _ESCAPES:
        if char in joined:
            joined = joined.replace(char, escaped)
    return joined.split(_SEPARATOR)


def _escape_text(value: str) -> str:
    if _SEPARATOR in value:
        raise ValueError(NUL_IN_TEXT)
    for char, escaped in _ESCAPES:
        if char in value:
            value = value.replace(char, escaped)
    return value


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()


def _bytea_column(values: Column) -> list[str]:
    return ["\\\\x" + digits for digits in map(bytes.hex, values)]


def _bool(value: bool) -> str:
    return "t" if value else "f"


#: Formatter of a column whose values all have one type (the fast cases).
_UNIFORM: dict[type, Callable[[Column], list[str]]] = {
    int: lambda values: list(map(int.__repr__, values)),
    float: lambda values: list(map(float.__repr__, values)),
    str: _escape_texts,
    bytes: _bytea_column,
    bool: lambda values: list(map(_bool, values)),
    type(None): lambda values: [NULL] * len(values),
}
#: Formatter of one value, for columns that mix types.
_SINGLE: dict[type, Callable[[Any], str]] = {
    int: int.__repr__,
    float: float.__repr__,
    str: _escape_text,
    bytes: _bytea,
    bool: _bool,
    type(None): lambda _value: NULL,
}


def _unsupported(kinds: set[type]) -> TypeError:
    names = ", ".join(sorted(kind.__name__ for kind in kinds - _SINGLE.keys()))
    return TypeError(f"no bulk COPY text for values of type {names}")


def _format_column(values: Column) -> list[str]:
    kinds = set(map(type, values))
    if len(kinds) == 1:
        (kind,) = kinds
        uniform = _UNIFORM.get(kind)
        if uniform is None:
            raise _unsupported(kinds)
        return uniform(values)
    if not kinds <= _SINGLE.keys():
        raise _unsupported(kinds)
    none = type(None)
    if len(kinds) == 2 and none in kinds:
        # A nullable column of one type: format the values in bulk, put the NULLs back.
        (kind,) = kinds - {none}
        present = iter(_UNIFORM[kind]([value for value in values if value is not None]))
        return [NULL if value is None else next(present) for value in values]
    single = _SINGLE
    return [single[type(value)](value) for value in values]
