"""Column types: what a target table created by a transfer looks like.

When the target table is missing, the transfer creates it with one column per
source column, in source order, named exactly as in the source. Types follow
the source's declared types:

* **Same dialect** -- the declared type is copied verbatim: a SQLite column keeps
  its declaration (also an empty one), a PostgreSQL column keeps its exact type
  including modifiers (``numeric(12,2)``, ``varchar(40)``, ``timestamptz``,
  ``int4[]``). PostgreSQL types that are not built in (enums, domains,
  composites, extension types) become ``text``: they may not exist in the
  target database.
* **Across dialects** -- by family:

  ======================================  ========================  ==============
  source type (either side)               PostgreSQL target         SQLite target
  ======================================  ========================  ==============
  integer types (``INT`` anywhere)        ``bigint``                ``INTEGER``
  ``REAL``/``FLOAT``/``DOUBLE``           ``double precision``      ``REAL``
  ``NUMERIC``/``DECIMAL``(p,s)            ``numeric``\\(p,s)          see below
  ``BOOLEAN``                             ``boolean``               ``BOOLEAN``
  ``TEXT``/``CHAR``/``VARCHAR``/``CLOB``  ``text``                  ``TEXT``
  ``DATE``                                ``date``                  ``DATE``
  ``DATETIME``/``TIMESTAMP``              ``timestamp``             ``TIMESTAMP``
  ``TIMESTAMPTZ``/``... WITH TIME ZONE``  ``timestamptz``           ``TIMESTAMP``
  ``TIME``                                ``time``                  ``TIME``
  ``interval``                            ``text``                  ``TEXT``
  ``BLOB``/``bytea``                      ``bytea``                 ``BLOB``
  ``JSON``/``jsonb``                      ``jsonb``                 ``TEXT``
  ``UUID``                                ``uuid``                  ``TEXT``
  arrays (PostgreSQL)                     --                        ``TEXT`` (JSON)
  no type / anything else                 ``text``                  ``TEXT``
  ======================================  ========================  ==============

  SQLite integers are 64-bit, hence ``bigint``. SQLite ``VARCHAR(n)`` becomes
  ``text`` because SQLite never enforced ``n``. Values that SQLite stores as text
  (dates, times, JSON, UUIDs) are parsed by PostgreSQL on the way in; a value the
  declared type cannot hold fails the load with the database's message.

Exact decimals (PostgreSQL ``numeric``; SQLite numeric types with text affinity,
``DECIMAL TEXT(p,s)``) become ``NUMERIC`` in a new SQLite table when a REAL holds
every value (``p <= 15``), else ``DECIMAL TEXT(p,s)``: the decimal's text, every
digit (:func:`sqlite_decimal_type`). An existing target column that would round
them is refused (:func:`rounding_reason`).

PostgreSQL values bound for SQLite are converted on the source server: numerics,
dates, times, timestamps (rendered in UTC, ISO format), intervals, UUIDs, JSON
and anything else non-basic become their text form, arrays become JSON text;
integers, floats, booleans (0/1), text and bytes pass unchanged.

The tables live here; each dialect object applies them as its
``target_type`` (:mod:`~dpone_core.executor.transfer.dialects`).

When the target table already exists it is never altered: its column types win
(staging uses them), it must have every source column, and extra target columns
get their defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "DECIMAL_TEXT",
    "NUMERIC_MODIFIERS",
    "REAL_DIGITS",
    "TO_POSTGRES",
    "TO_SQLITE",
    "ColumnType",
    "DialectName",
    "Family",
    "decimal_digits",
    "pg_column_type",
    "pg_to_sqlite_cast",
    "rounding_reason",
    "sqlite_affinity",
    "sqlite_column_type",
    "sqlite_decimal_type",
]

#: The name a dialect object carries (:mod:`~dpone_core.executor.transfer.dialects`);
#: a source column remembers it so that a target of the same dialect can copy its type.
DialectName = Literal["sqlite", "postgresql"]

#: PostgreSQL assigns OIDs below this to objects created by initdb (built-in types).
PG_FIRST_NORMAL_OID = 16384


class Family(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TIME = "time"
    INTERVAL = "interval"
    BINARY = "binary"
    JSON = "json"
    UUID = "uuid"
    ARRAY = "array"
    UNTYPED = "untyped"
    OTHER = "other"


@dataclass(frozen=True)
class ColumnType:
    """A source column's type as its database declares it, plus its family."""

    dialect: DialectName
    declared: str
    family: Family
    #: PostgreSQL only: the type ships with PostgreSQL (so it exists in any target database).
    builtin: bool = True


NUMERIC_MODIFIERS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")


#: SQLite's declared type of exact decimals: TEXT affinity (the name contains ``TEXT``), so
#: SQLite stores the decimal's text as it is instead of converting it to a REAL.
DECIMAL_TEXT = "DECIMAL TEXT"
#: Significant decimal digits that survive a round trip through a REAL (IEEE double).
REAL_DIGITS = 15


def sqlite_affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (its five rules, in order)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper.strip():
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def sqlite_column_type(declared: str) -> ColumnType:
    """Family of a SQLite declared type: common names first, then SQLite's affinity rules."""
    upper = " ".join(declared.upper().split())
    base = upper.split("(")[0].strip()
    family: Family
    if not upper:
        family = Family.UNTYPED
    elif ("DECIMAL" in base or "NUMERIC" in base) and sqlite_affinity(base) == "TEXT":
        family = Family.NUMERIC  # exact decimals kept as text (``DECIMAL TEXT(p,s)``)
    elif "BOOL" in base:
        family = Family.BOOLEAN
    elif base in ("DATE",):
        family = Family.DATE
    elif base.startswith(("DATETIME", "TIMESTAMP")):
        tz = "TZ" in base or "WITH TIME ZONE" in upper
        family = Family.TIMESTAMPTZ if tz else Family.TIMESTAMP
    elif base.startswith("TIME"):
        family = Family.TIME
    elif base.startswith("JSON"):
        family = Family.JSON
    elif base == "UUID":
        family = Family.UUID
    elif "INT" in base:
        family = Family.INTEGER
    elif any(word in base for word in ("CHAR", "CLOB", "TEXT")):
        family = Family.TEXT
    elif "BLOB" in base:
        family = Family.BINARY
    elif any(word in base for word in ("REAL", "FLOA", "DOUB")):
        family = Family.FLOAT
    elif any(word in base for word in ("NUMERIC", "DECIMAL", "NUMBER", "MONEY")):
        family = Family.NUMERIC
    else:
        family = Family.OTHER
    return ColumnType("sqlite", declared, family)


_PG_FAMILIES: dict[str, Family] = {
    "int2": Family.INTEGER,
    "int4": Family.INTEGER,
    "int8": Family.INTEGER,
    "smallint": Family.INTEGER,
    "integer": Family.INTEGER,
    "bigint": Family.INTEGER,
    "oid": Family.INTEGER,
    "float4": Family.FLOAT,
    "float8": Family.FLOAT,
    "real": Family.FLOAT,
    "double precision": Family.FLOAT,
    "numeric": Family.NUMERIC,
    "decimal": Family.NUMERIC,
    "money": Family.OTHER,
    "bool": Family.BOOLEAN,
    "boolean": Family.BOOLEAN,
    "text": Family.TEXT,
    "varchar": Family.TEXT,
    "character varying": Family.TEXT,
    "bpchar": Family.TEXT,
    "char": Family.TEXT,
    "character": Family.TEXT,
    "name": Family.TEXT,
    "citext": Family.TEXT,
    "date": Family.DATE,
    "timestamp": Family.TIMESTAMP,
    "timestamp without time zone": Family.TIMESTAMP,
    "timestamptz": Family.TIMESTAMPTZ,
    "timestamp with time zone": Family.TIMESTAMPTZ,
    "time": Family.TIME,
    "time without time zone": Family.TIME,
    "timetz": Family.TIME,
    "time with time zone": Family.TIME,
    "interval": Family.INTERVAL,
    "bytea": Family.BINARY,
    "json": Family.JSON,
    "jsonb": Family.JSON,
    "uuid": Family.UUID,
}


def pg_column_type(declared: str, oid: int) -> ColumnType:
    """Family of a PostgreSQL type as ``format_type``/psycopg display it (``numeric(12,2)``)."""
    text = " ".join(declared.lower().split())
    builtin = oid < PG_FIRST_NORMAL_OID
    if text.endswith("[]"):
        return ColumnType("postgresql", declared, Family.ARRAY, builtin)
    base = NUMERIC_MODIFIERS.sub("", text).strip()
    # ``timestamp(3) with time zone`` -> ``timestamp with time zone``
    base = " ".join(base.split())
    family = _PG_FAMILIES.get(base, Family.OTHER) if builtin else Family.OTHER
    return ColumnType("postgresql", declared, family, builtin)


TO_POSTGRES: dict[Family, str] = {
    Family.INTEGER: "bigint",
    Family.FLOAT: "double precision",
    Family.NUMERIC: "numeric",
    Family.BOOLEAN: "boolean",
    Family.TEXT: "text",
    Family.DATE: "date",
    Family.TIMESTAMP: "timestamp",
    Family.TIMESTAMPTZ: "timestamptz",
    Family.TIME: "time",
    Family.INTERVAL: "text",
    Family.BINARY: "bytea",
    Family.JSON: "jsonb",
    Family.UUID: "uuid",
    Family.ARRAY: "text",
    Family.UNTYPED: "text",
    Family.OTHER: "text",
}

TO_SQLITE: dict[Family, str] = {
    Family.INTEGER: "INTEGER",
    Family.FLOAT: "REAL",
    Family.NUMERIC: "NUMERIC",
    Family.BOOLEAN: "BOOLEAN",
    Family.TEXT: "TEXT",
    Family.DATE: "DATE",
    Family.TIMESTAMP: "TIMESTAMP",
    Family.TIMESTAMPTZ: "TIMESTAMP",
    Family.TIME: "TIME",
    Family.INTERVAL: "TEXT",
    Family.BINARY: "BLOB",
    Family.JSON: "TEXT",
    Family.UUID: "TEXT",
    Family.ARRAY: "TEXT",
    Family.UNTYPED: "TEXT",
    Family.OTHER: "TEXT",
}


def decimal_digits(column: ColumnType) -> tuple[int | None, int | None] | None:
    """``(precision, scale)`` of a column that holds exact decimals, else None.

    Exact decimals are PostgreSQL ``numeric`` and SQLite numeric types with TEXT affinity
    (``DECIMAL TEXT(p,s)``); a SQLite ``NUMERIC`` column already holds binary numbers.
    ``(None, None)``: unconstrained.
    """
    if column.family is not Family.NUMERIC:
        return None
    if column.dialect == "sqlite" and sqlite_affinity(column.declared) != "TEXT":
        return None
    match = NUMERIC_MODIFIERS.search(column.declared)
    if match is None:
        return None, None
    return int(match.group(1)), int(match.group(2) or 0)


def sqlite_decimal_type(column: ColumnType) -> str:
    """SQLite type of a new column for exact decimals: NUMERIC when a REAL holds them all."""
    digits = decimal_digits(column)
    if digits is None:
        return TO_SQLITE[column.family]
    precision, scale = digits
    if precision is not None and precision <= REAL_DIGITS:
        return "NUMERIC"
    if precision is None:
        return DECIMAL_TEXT
    return f"{DECIMAL_TEXT}({precision},{scale})"


_PG_INTEGER_DIGITS = {"smallint": 4, "int2": 4, "integer": 9, "int4": 9, "int": 9}
_PG_INTEGER_DIGITS.update({"bigint": 18, "int8": 18})


def rounding_reason(source: ColumnType, target: DialectName, declared: str) -> str | None:
    """Why an existing target column of type ``declared`` would round ``source``'s values.

    None when it holds every value exactly (or the source holds no exact decimals).
    """
    digits = decimal_digits(source)
    if digits is None:
        return None
    precision, scale = digits
    shown = f"numeric({precision},{scale})" if precision is not None else "unconstrained numeric"
    if target == "sqlite":
        affinity = sqlite_affinity(declared)
        if affinity in ("TEXT", "BLOB"):
            return None
        if precision is not None and precision <= REAL_DIGITS:
            return None
        return (
            f"{affinity} affinity keeps {REAL_DIGITS} significant digits of {shown} values; "
            f"declare the column {sqlite_decimal_type(source)} (text affinity)"
        )
    text = " ".join(declared.lower().split())
    base = NUMERIC_MODIFIERS.sub("", text).strip()
    if base in ("numeric", "decimal"):
        match = NUMERIC_MODIFIERS.search(text)
        if match is None:
            return None
        to_precision, to_scale = int(match.group(1)), int(match.group(2) or 0)
        if (
            precision is not None
            and scale is not None
            and (scale <= to_scale and precision - scale <= to_precision - to_scale)
        ):
            return None
        return f"{declared} rounds or overflows {shown} values"
    if base in ("double precision", "float8", "real", "float4"):
        limit = REAL_DIGITS if base in ("double precision", "float8") else 6
        if precision is not None and precision <= limit:
            return None
        return f"{declared} keeps {limit} significant digits of {shown} values"
    if base in _PG_INTEGER_DIGITS:
        if precision is not None and scale == 0 and precision <= _PG_INTEGER_DIGITS[base]:
            return None
        return f"{declared} drops the fraction of {shown} values"
    return None


_PASS_TO_SQLITE = frozenset(
    {Family.INTEGER, Family.FLOAT, Family.BOOLEAN, Family.TEXT, Family.BINARY}
)


def pg_to_sqlite_cast(column: ColumnType, quoted: str) -> str:
    """Select expression that hands a PostgreSQL value to SQLite in a type sqlite3 can bind."""
    if column.family in _PASS_TO_SQLITE:
        return quoted
    if column.family is Family.ARRAY:
        return f"to_json({quoted})::text"
    return f"{quoted}::text"
