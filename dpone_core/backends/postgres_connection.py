"""The PostgreSQL server the backend uses, and how to talk about it without its password.

:class:`PostgresTarget` is the only object that ever holds the DSN. It hands
out connections and describes itself as ``postgresql://user@host:port/db``,
built from the parsed parameters rather than by masking the DSN, so a
password cannot leak through an unusual spelling. The password is also
registered with :mod:`dpone_core.redact`, so any text that passes through
``redact`` (reports, state reasons, log lines, handoff snippets) masks it even
if some driver message quoted it.

Connections are plain psycopg connections, never pooled: the lock backend
needs one session per held lock (advisory locks are re-entrant within a
session, so a shared session would "acquire" a key it already holds), and
the state store needs one session it can throw away when it breaks.

psycopg is used directly; SQLAlchemy adds nothing for a handful of fixed
statements and would cost its import time on every CLI run.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from dpone_core.defaults import BACKEND_SCHEMA
from dpone_core.errors import BackendConfigError, BackendUnavailable
from dpone_core.redact import redact, register_secret, register_url_secrets

__all__ = ["PgConnection", "PostgresTarget", "check_schema_name", "first_line"]
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

PgConnection = psycopg.Connection[tuple[Any, ...]]

#: Connection options applied unless the DSN sets them. A dead server that
#: never closes the socket (a host that lost power, a partition) would make a
#: statement wait for the kernel's retransmission timeout, about 15 minutes;
#: keepalives and ``tcp_user_timeout`` make it fail within about 30 seconds, so
#: a lock holder notices that it lost its session in bounded time.
_DEFAULT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, redacted (libpq adds hint lines we do not need)."""
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


def check_schema_name(schema: str) -> str:
    """Schema names are plain identifiers: they appear in every statement and in argv."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise BackendConfigError(
            f"backend schema {schema!r} is not a plain identifier (expected letters, digits "
            "and '_', not starting with a digit, at most 63 characters)"
        )
    return schema


class PostgresTarget:
    """A DSN plus the schema that holds dpone's tables."""

    def __init__(self, dsn: str, schema: str = BACKEND_SCHEMA) -> None:
        # Parsed by dpone first: libpq may misread a password holding "/", "@" or a space
        # and quote part of it in an error.
        register_url_secrets(dsn)
        self.schema = check_schema_name(schema)
        try:
            params = pg_conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise BackendConfigError(f"invalid PostgreSQL DSN: {first_line(exc)}") from None
        password = params.get("password")
        if password:
            register_secret(str(password))
        self._dsn = dsn
        self._params = params

    def describe(self) -> str:
        """``postgresql://user@host:port/db``: rebuilt from parts, so it never holds a password."""
        user = self._params.get("user")
        host = self._params.get("host") or self._params.get("hostaddr") or "localhost"
        port = self._params.get("port")
        dbname = self._params.get("dbname")
        netloc = (f"{user}@" if user else "") + str(host) + (f":{port}" if port else "")
        return f"postgresql://{netloc}/{dbname or ''}"

    def describe_table(self, table: str) -> str:
        return f"{self.describe()} {self.schema}.{table}"

    def identity(self) -> tuple[str, ...]:
        """Which database and schema this is, for per-process caches (no password)."""
        keys = ("host", "hostaddr", "port", "dbname", "user")
        return (*(str(self._params.get(k) or "") for k in keys), self.schema)

    def connect(self, *, purpose: str) -> PgConnection:
        """A new autocommit connection of its own; raises :class:`BackendUnavailable`."""
        options = {k: v for k, v in _DEFAULT_OPTIONS.items() if k not in self._params}
        if "application_name" not in self._params:
            options["application_name"] = f"dpone {purpose}"[:63]
        try:
            return psycopg.connect(self._dsn, autocommit=True, **options)
        except psycopg.Error as exc:
            raise BackendUnavailable(
                f"cannot connect to {self.describe()}: {first_line(exc)}"
            ) from None

    def __repr__(self) -> str:
        return f"PostgresTarget({self.describe()!r}, schema={self.schema!r})"
