"""SQLite endpoints without SQLAlchemy mean exactly what they meant through it.

A plain SQLite URL is parsed here and opened by ``sqlite3`` (the import of SQLAlchemy
cost a small load more than the load). What must not change: the database a URL
names (compared with SQLAlchemy's own ``make_url``), identifier quoting (compared
with SQLAlchemy's pysqlite dialect), the ``regexp``/``floor`` SQL functions that
SQLAlchemy registered on its connections, and every other URL still going to
SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import make_url
from transfer_support import (
    connections,
    context,
    create_orders,
    process,
    rows,
    seed_orders,
    sqlite_side,
)

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer import run_transfer
from dpone_core.executor.transfer.dialects.sqlite import quote_identifier
from dpone_core.executor.transfer.urls import SqliteUrl, parse_connection_url

#: Path characters a manifest may hold, ``?``/``#``/``%`` included (those go to SQLAlchemy).
_PATH = st.text(
    alphabet=st.sampled_from(list("ab/._-: @+é?#%=&")) | st.characters(codec="utf-8"),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(driver=st.sampled_from(["sqlite", "sqlite+pysqlite"]), path=_PATH, slash=st.booleans())
def test_every_sqlite_url_names_the_database_sqlalchemy_names(
    driver: str, path: str, slash: bool
) -> None:
    text = f"{driver}://{'/' if slash else ''}{path}"
    try:
        expected = make_url(text)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 - whatever make_url raises, we raise
            parse_connection_url(text)
        return
    url = parse_connection_url(text)
    assert url.database == expected.database
    assert url.drivername == expected.drivername
    assert url.get_backend_name() == expected.get_backend_name()
    plain = isinstance(url, SqliteUrl)
    rest = text.split("://", 1)[1]
    assert plain == ((rest == "" or rest.startswith("/")) and not any(c in rest for c in "?#%"))
    if plain:  # nothing SQLAlchemy would have read besides the database
        assert (expected.host, expected.username, expected.query) == (None, None, {})


def test_plain_forms_skip_sqlalchemy_and_others_do_not() -> None:
    for text in ("sqlite://", "sqlite:///", "sqlite:///a.db", "sqlite:////abs/x y.db",
                 "sqlite:///:memory:", "sqlite+pysqlite:///é.db"):  # fmt: skip
        assert isinstance(parse_connection_url(text), SqliteUrl), text
    for text in ("sqlite:///a.db?mode=ro", "sqlite:///a%20b.db", "postgresql://u@h/db"):
        assert not isinstance(parse_connection_url(text), SqliteUrl), text
    assert parse_connection_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_connection_url("sqlite:///:memory:").render_as_string() == "sqlite:///:memory:"


@settings(max_examples=300, deadline=None)
@given(identifier=st.text(min_size=1, max_size=20))
def test_quoting_is_sqlalchemys(identifier: str) -> None:
    preparer = pysqlite.dialect().identifier_preparer
    assert quote_identifier(identifier) == preparer.quote_identifier(identifier)


def test_a_source_query_may_use_regexp_and_floor(tmp_path: Path) -> None:
    """SQLAlchemy's pysqlite dialect registered both; manifests written then still load."""
    src, dst = sqlite_side(tmp_path / "s.db"), sqlite_side(tmp_path / "t.db")
    create_orders(src)
    seed_orders(src, range(1, 21))
    query = (
        "SELECT order_id, floor(amount) AS whole FROM orders "
        "WHERE customer REGEXP '^customer [135]$'"
    )
    spec = process(None, "picked", "append", query=query)
    result = run_transfer(spec, context(connections(src, dst)))
    assert result.status == "passed", result.errors
    assert result.final_rows == sum(1 for i in range(1, 21) if i % 7 in (1, 3, 5))
    picked = sorted(rows(dst, "picked", "order_id, whole"))
    assert picked == [(i, i * 3) for i in range(1, 21) if i % 7 in (1, 3, 5)]


def test_a_url_that_is_no_url_is_a_manifest_error(tmp_path: Path) -> None:
    src = sqlite_side(tmp_path / "s.db")
    create_orders(src)
    spec = process("orders", "landing", "append")
    conns = {"src": "sqlite:///" + str(tmp_path / "s.db"), "dst": "not a url"}
    with pytest.raises(ManifestError, match=r"connections\.dst"):
        run_transfer(spec, context(conns))
