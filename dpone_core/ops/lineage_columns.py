"""The real columns of a dataset, read from its database's catalog (SQLAlchemy's inspector).

Read when the lineage is exported, so the schema facet shows the table as it is
then (right after the run, in the production pattern). A table or database that
cannot be read is not an error: the dataset is exported without a schema facet
and the reason is returned for the report. A SQLite file that does not exist is
never created by looking at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpone_core.ops.lineage_naming import connection_parts
from dpone_core.redact import redact

__all__ = ["Column", "read_columns"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str | None


def _split(table: str) -> tuple[str | None, str]:
    head, sep, tail = table.strip().rpartition(".")
    return (head or None, tail) if sep else (None, table.strip())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_columns(url: str, table: str) -> tuple[list[Column] | None, str | None]:
    """(columns in table order, None) or (None, why they could not be read)."""
    import sqlalchemy as sa

    from dpone_core.executor.transfer.connections import normalize_url

    try:
        parts = connection_parts(url)
        if parts.backend == "sqlite" and parts.database and not Path(parts.database).exists():
            return None, f"{table}: the SQLite file does not exist"
        engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    except Exception as exc:
        return None, redact(f"{table}: {_first_line(exc)}")
    schema, name = _split(table)
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn).get_columns(name, schema=schema)
    except Exception as exc:
        return None, redact(f"{table}: {_first_line(exc)}")
    finally:
        engine.dispose()
    columns = [
        Column(name=str(c["name"]), type=None if c.get("type") is None else str(c["type"]))
        for c in found
    ]
    return columns, None
