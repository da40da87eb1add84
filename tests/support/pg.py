"""The local PostgreSQL for tests/contract and tests/test_pg_backend_*.py: DSN, schemas, password.

Tests never skip when the server is missing: they fail, because the backend
they cover would then be untested. Each test gets its own schema (the
backend's ``schema`` option) and drops it afterwards, so tests can run in
parallel with each other and with other suites using the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

TEST_DSN = os.environ.get("DPONE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Trust authentication ignores it; the tests check it never leaks anywhere.
FAKE_PASSWORD = "pw-secret-123"


def dsn_with_password() -> tuple[str, str]:
    """(a URL DSN that carries a password, that password), for the secrecy tests."""
    parts = urlsplit(TEST_DSN)
    if parts.password:
        return TEST_DSN, parts.password
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user)}:{FAKE_PASSWORD}@{host}{port}"
    return urlunsplit(
        (parts.scheme, netloc, parts.path, parts.query, parts.fragment)
    ), FAKE_PASSWORD


@contextmanager
def admin() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        yield conn


def new_schema() -> str:
    return f"dpone_t_{uuid.uuid4().hex[:12]}"


def drop_schema(name: str) -> None:
    with admin() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def query(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with admin() as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []


def terminate(backend_pid: int) -> bool:
    rows = query("SELECT pg_terminate_backend(%s)", backend_pid)
    return bool(rows and rows[0][0])
