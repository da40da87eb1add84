"""Dialect objects: everything SQLite and PostgreSQL do differently, one object each.

======================  =========================================================
``base``                the :class:`Dialect` interface (capabilities, connections,
                        SQL spelling, catalog) and ``literal_sql``
``sqlite``              :class:`SqliteDialect`
``sqlite_catalog``      what a SQLite database says about a table or query
``postgres``            :class:`PostgresDialect`
``postgres_catalog``    what a PostgreSQL database says about a table or query
======================  =========================================================

The engine asks its endpoints' dialects (``endpoint.dialect.copy_in``,
``endpoint.dialect.upsert_head(...)``) and never compares dialect names.
"""

from __future__ import annotations

from dpone_core.executor.transfer.dialects.base import ConnectionFactory, Dialect, literal_sql
from dpone_core.executor.transfer.dialects.postgres import PostgresDialect
from dpone_core.executor.transfer.dialects.sqlite import SqliteDialect

__all__ = [
    "DIALECTS",
    "POSTGRES",
    "SQLITE",
    "ConnectionFactory",
    "Dialect",
    "PostgresDialect",
    "SqliteDialect",
    "dialect_for_backend",
    "literal_sql",
]

SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()
#: Every dialect a transfer supports, by SQLAlchemy backend name.
DIALECTS: dict[str, Dialect] = {"sqlite": SQLITE, "postgresql": POSTGRES}


def dialect_for_backend(backend: str) -> Dialect | None:
    """The dialect of a SQLAlchemy backend name (``url.get_backend_name()``), if supported."""
    return DIALECTS.get(backend)
