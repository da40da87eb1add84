"""Fixtures of the transfer tests: real SQLite files and the local PostgreSQL.

PostgreSQL is required, not optional: when it is unreachable every test that
needs it errors loudly (it is never skipped). Each test gets its own schema,
dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from transfer_support import Side, libpq_dsn, pg_dsn, sqlite_side

from dpone_core.redact import redact_url


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = pg_dsn()
    try:
        with psycopg.connect(libpq_dsn(url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {redact_url(url)} (DPONE_TEST_PG_DSN) is unreachable: {exc}; "
            "the transfer tests need it",
            pytrace=False,
        )
    return url


def _new_schema(url: str) -> str:
    schema = f"dpone_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    schema = _new_schema(pg_url)
    try:
        yield schema
    finally:
        _drop_schema(pg_url, schema)


@pytest.fixture
def pg_side(pg_url: str, pg_schema: str) -> Side:
    return Side("postgresql", pg_url, schema=pg_schema)


@pytest.fixture
def sqlite_src(tmp_path: Path) -> Side:
    return sqlite_side(tmp_path / "source.db")


@pytest.fixture
def sqlite_dst(tmp_path: Path) -> Side:
    return sqlite_side(tmp_path / "target.db")


PAIRS = ["sqlite-sqlite", "sqlite-postgres", "postgres-postgres"]


@pytest.fixture(params=PAIRS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    """(source, target) for each dialect pair the engine must support for real."""
    kind: str = request.param
    if kind == "sqlite-sqlite":
        yield sqlite_side(tmp_path / "source.db"), sqlite_side(tmp_path / "target.db")
        return
    url: str = request.getfixturevalue("pg_url")
    schema = _new_schema(url)
    try:
        target = Side("postgresql", url, schema=schema)
        if kind == "sqlite-postgres":
            yield sqlite_side(tmp_path / "source.db"), target
        else:
            yield Side("postgresql", url, schema=schema), target
    finally:
        _drop_schema(url, schema)
