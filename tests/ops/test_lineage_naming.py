"""Dataset namespaces per the OpenLineage naming spec, and never a password in one."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dpone_core.ops.lineage_naming import (
    DatasetId,
    clean_namespace,
    connection_parts,
    dataset_for_table,
)


@pytest.mark.parametrize(
    ("url", "table", "expected"),
    [
        (
            "postgresql://u@db.example:5432/shop",
            "orders",
            ("postgres://db.example:5432", "shop.public.orders"),
        ),
        (
            "postgresql+psycopg://u@DB.example/shop",
            "sales.orders",
            ("postgres://db.example:5432", "shop.sales.orders"),
        ),
        (
            "postgres://u:pa/ss word@db:6543/shop",
            "orders",
            ("postgres://db:6543", "shop.public.orders"),
        ),
        ("postgresql://u:p@ss@db/shop", "orders", ("postgres://db:5432", "shop.public.orders")),
        (
            "postgresql://u@[::1]:5433/shop",
            "orders",
            ("postgres://[::1]:5433", "shop.public.orders"),
        ),
        (
            "mysql+pymysql://u:pw@mysql.local/shop",
            "orders",
            ("mysql://mysql.local:3306", "shop.orders"),
        ),
        (
            "mssql+pyodbc://u:pw@sql.local:1444/dwh",
            "landing.orders",
            ("mssql://sql.local:1444", "dwh.landing.orders"),
        ),
        (
            "mssql+pyodbc://u:pw@sql.local/dwh",
            "orders",
            ("mssql://sql.local:1433", "dwh.dbo.orders"),
        ),
        ("sqlite:////abs/data/shop.db", "orders", ("sqlite:/abs/data/shop.db", "orders")),
        ("sqlite:////abs/data/shop.db", "main.orders", ("sqlite:/abs/data/shop.db", "orders")),
        ("sqlite://", "orders", ("sqlite::memory:", "orders")),
    ],
)
def test_namespaces_and_names_follow_the_naming_spec(
    url: str, table: str, expected: tuple[str, str]
) -> None:
    assert dataset_for_table(connection_parts(url), table) == DatasetId(*expected)


def test_a_url_that_is_not_one_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="SQLAlchemy URL"):
        connection_parts("not a url")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres", "postgres"),
        ("mssql", "mssql"),
        ("postgres://db:5432", "postgres://db:5432"),
        ("postgres://user:secret@db:5432", "postgres://db:5432"),
        ("postgres://user:se/cr et@db:5432", "postgres://db:5432"),
        ("postgres://user@db:5432/x?y=1", "postgres://db:5432/x?y=1"),
    ],
)
def test_given_namespaces_lose_their_credentials(given: str, expected: str) -> None:
    assert clean_namespace(given) == expected


_PASSWORDS = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="/ @!#$%^&*()-_+"),
    min_size=8,
    max_size=24,
).filter(lambda p: p.strip() == p)


@given(_PASSWORDS)
@example(password="000000@/")  # a URL parser reads "@db..." as the database here
def test_no_password_reaches_a_namespace(password: str) -> None:
    url = f"postgresql://loader:{password}@db.internal:5432/shop"
    dataset = dataset_for_table(connection_parts(url), "orders")
    assert dataset == DatasetId("postgres://db.internal:5432", "shop.public.orders")
    cleaned = clean_namespace(f"postgres://loader:{password}@db.internal:5432")
    assert cleaned == "postgres://db.internal:5432"
