"""Dataset namespaces and names as the OpenLineage naming spec spells them; never a password.

A namespace names the data source (``scheme://authority``), a name the dataset in
it. For the databases a manifest connects to:

==============  ==================================  ===============================
database        namespace                           name
==============  ==================================  ===============================
PostgreSQL      ``postgres://{host}:{port}``        ``{database}.{schema}.{table}``
MySQL/MariaDB   ``mysql://{host}:{port}``           ``{database}.{table}``
SQL Server      ``mssql://{host}:{port}``           ``{database}.{schema}.{table}``
Oracle          ``oracle://{host}:{port}``          ``{service}.{schema}.{table}``
SQLite          ``sqlite:{absolute file path}``     ``{table}``
other           ``{backend}://{host}:{port}``       ``{database}.{table}``
==============  ==================================  ===============================

Default ports are filled in (5432, 3306, 1433, 1521) so that two spellings of one
server give one namespace; a table without a schema is in ``public`` (PostgreSQL)
or ``dbo`` (SQL Server). Namespaces are built from the parsed host and port only,
so a user name or password cannot reach one. The URL is parsed by SQLAlchemy, the
same parser the transfer engine connects with, so a password holding ``/``, ``@``
or spaces is read the way the connection reads it.

Namespaces given on the command line (``--input NS=NAME``) keep their spelling,
minus any ``user:password@``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dpone_core.redact import redact

__all__ = [
    "ConnectionParts",
    "DatasetId",
    "clean_namespace",
    "connection_parts",
    "dataset_for_table",
]

_SCHEMES = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "mssql"}
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
_DEFAULT_SCHEMAS = {"postgres": "public", "mssql": "dbo"}
_HOST_THEN_REST = re.compile(r"[^@/?#\s]*(?:[/?#]|\Z)")


@dataclass(frozen=True)
class DatasetId:
    namespace: str
    name: str


@dataclass(frozen=True)
class ConnectionParts:
    """What a connection URL says about where data lives (no credentials)."""

    #: SQLAlchemy's backend name: ``postgresql``, ``sqlite``, ``mysql``, ...
    backend: str
    host: str | None
    port: int | None
    #: The database (for SQLite: the file path, absolute when the manifest resolved it).
    database: str | None


def connection_parts(url: str) -> ConnectionParts:
    """Parse ``url`` (a SQLAlchemy URL) into its parts; ValueError if it is not one."""
    from sqlalchemy.engine import make_url

    try:
        # Credentials are not part of a dataset's name; dropped first, they cannot be
        # misread as the host or the database (a password holding "@/").
        parsed = make_url(_without_credentials(url))
    except Exception:
        raise ValueError("expected a SQLAlchemy URL such as postgresql://host/db") from None
    host = parsed.host or None
    if host is not None and "@" in host:
        # A password holding "@" leaves its tail in front of the host: no host has an "@".
        host = host.rsplit("@", 1)[1] or None
    return ConnectionParts(
        backend=parsed.get_backend_name(),
        host=host,
        port=parsed.port,
        database=parsed.database or None,
    )


def _authority(scheme: str, parts: ConnectionParts) -> str:
    host = (parts.host or "localhost").lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _split_table(table: str) -> tuple[str | None, str]:
    head, sep, tail = table.strip().rpartition(".")
    return (head or None, tail) if sep else (None, table.strip())


def _sqlite(parts: ConnectionParts, table: str) -> DatasetId:
    schema, name = _split_table(table)
    path = parts.database or ":memory:"
    qualified = name if schema in (None, "main") else f"{schema}.{name}"
    return DatasetId(namespace=f"sqlite:{path}", name=qualified)


def dataset_for_table(parts: ConnectionParts, table: str) -> DatasetId:
    """The dataset of ``table`` (``table`` or ``schema.table``) on this connection."""
    if parts.backend == "sqlite":
        return _sqlite(parts, table)
    scheme = _SCHEMES.get(parts.backend, parts.backend)
    namespace = _authority(scheme, parts) if parts.host else f"{scheme}:{parts.database or ''}"
    schema, name = _split_table(table)
    database = parts.database
    if scheme in ("postgres", "mssql", "oracle"):
        schema = schema or _DEFAULT_SCHEMAS.get(scheme)
        pieces = [database, schema, name]
    elif scheme == "mysql":
        pieces = [schema or database, name]  # a MySQL "schema" is a database
    else:
        pieces = [database, schema, name] if parts.host else [schema, name]
    return DatasetId(namespace=namespace, name=".".join(p for p in pieces if p))


def _without_credentials(text: str) -> str:
    """``text`` (a URL or namespace) without ``user[:password]@``.

    The credentials end at the last ``@`` that is followed by something shaped like
    a host (no ``@``, ``/``, ``?``, ``#`` or space before the path, query or end), so
    a password holding ``/``, ``#``, ``@`` or spaces is removed whole, where a URL
    parser would read its tail as the host or the database.
    """
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        for at in sorted((i for i, c in enumerate(rest) if c == "@"), reverse=True):
            if _HOST_THEN_REST.match(rest, at + 1):
                return f"{scheme}{sep}{rest[at + 1 :]}"
    return text


def clean_namespace(namespace: str) -> str:
    """A namespace as given, without ``user[:password]@`` and masked by :func:`redact`."""
    return redact(_without_credentials(namespace.strip()))
