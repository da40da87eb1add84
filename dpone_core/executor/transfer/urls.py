"""Connection URLs of a transfer, parsed without SQLAlchemy where SQLite needs none.

Importing SQLAlchemy costs a SQLite-only load more than the load itself at small
sizes (~120-250 ms on the development machine, see docs/performance.md), and a
SQLite URL names nothing but a file. So the plain SQLite spelling --
``sqlite://``, ``sqlite:///relative.db``, ``sqlite:////abs.db``,
``sqlite:///:memory:``, also with ``+pysqlite`` -- is read here into a
:class:`SqliteUrl`, which gives the same ``database`` as SQLAlchemy's
``make_url`` (a test compares them). Anything else (a query string,
percent-escapes, a user or host part, any other database) goes to SQLAlchemy, as
before: manifests keep meaning SQLAlchemy URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["ConnectionUrl", "SqliteUrl", "normalize_url", "parse_connection_url"]

#: ``sqlite[+pysqlite]://`` and nothing, or ``/`` and a database path without the
#: characters that SQLAlchemy would read as a query, fragment or escape.
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?://(?:/(?P<database>[^?#%]*))?")


class ConnectionUrl(Protocol):
    """What the engine reads of a URL: SQLAlchemy's ``URL`` has it, as does SqliteUrl."""

    @property
    def drivername(self) -> str: ...

    @property
    def database(self) -> str | None: ...

    def get_backend_name(self) -> str: ...

    def render_as_string(self, hide_password: bool = True) -> str: ...


@dataclass(frozen=True)
class SqliteUrl:
    """A plain SQLite URL: a driver name and a database path (no password to hide).

    It renders as written (SQLAlchemy would percent-escape ``:``, ``@`` and non-ASCII
    characters of the path in messages; the path means the same either way).
    """

    text: str
    drivername: str
    database: str | None

    def get_backend_name(self) -> str:
        return "sqlite"

    def render_as_string(self, hide_password: bool = True) -> str:
        return self.text


def _plain_sqlite(text: str) -> SqliteUrl | None:
    match = _PLAIN_SQLITE.fullmatch(text)
    if match is None:
        return None
    return SqliteUrl(text=text, drivername=text.split("://", 1)[0], database=match["database"])


def normalize_url(text: str) -> URL:
    """SQLAlchemy's ``URL`` of ``text``; ``postgresql://`` becomes ``postgresql+psycopg://``."""
    from sqlalchemy.engine import make_url

    url = make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def parse_connection_url(text: str) -> ConnectionUrl:
    """The URL of a connection: a :class:`SqliteUrl` when plain, else SQLAlchemy's.

    Raises whatever ``make_url`` raises for text that is no URL.
    """
    plain = _plain_sqlite(text)
    if plain is not None:
        return plain
    url: ConnectionUrl = normalize_url(text)
    return url
