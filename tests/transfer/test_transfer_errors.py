"""User errors name the manifest field; operational failures are readable and secret-free."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from transfer_support import (
    Side,
    connections,
    context,
    create_orders,
    process,
    seed_orders,
    sqlite_side,
)

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer import run_transfer

SECRET = "pa55-w0rd-zz9"
MANIFEST = Path("/tmp/dpone-tests/manifest.yml")


@pytest.fixture
def src(tmp_path: Path) -> Side:
    side = sqlite_side(tmp_path / "source.db")
    create_orders(side)
    seed_orders(side, range(1, 6))
    return side


@pytest.mark.parametrize("role", ["source", "target"])
def test_refused_connection_fails_readably_without_the_password(
    src: Side, tmp_path: Path, role: str
) -> None:
    refused = f"postgresql://loader:{SECRET}@127.0.0.1:1/warehouse"
    conns = connections(src, sqlite_side(tmp_path / "target.db"))
    conns["src" if role == "source" else "dst"] = refused
    progress = io.StringIO()
    result = run_transfer(process("orders", "landing", "append"), context(conns, progress=progress))
    assert result.status == "failed"
    (error,) = result.errors
    assert f"cannot connect to {role} connection" in error
    assert "127.0.0.1" in error and ("refused" in error.lower() or "failed" in error.lower())
    assert "loader:***@" in error
    everything = json.dumps(result.model_dump(mode="json")) + progress.getvalue()
    assert SECRET not in everything
    assert result.load_id is not None and result.checkpoint is not None


def test_missing_sqlite_source_file_is_a_readable_failure(tmp_path: Path) -> None:
    conns = {
        "src": f"sqlite:///{tmp_path / 'nope.db'}",
        "dst": f"sqlite:///{tmp_path / 'target.db'}",
    }
    result = run_transfer(process("orders", "landing", "append"), context(conns))
    assert result.status == "failed"
    assert "SQLite database file not found" in result.errors[0]
    assert not (tmp_path / "nope.db").exists()  # never created by reading it


def _expect_manifest_error(spec_kwargs: dict[str, object], conns: dict[str, str]) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        run_transfer(process(**spec_kwargs), context(conns, manifest=MANIFEST))  # type: ignore[arg-type]
    error = caught.value
    assert error.file == str(MANIFEST)
    return error


def test_missing_source_table_names_the_field(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    create_orders(src)
    error = _expect_manifest_error(
        {
            "source_table": src.table("no_such_table"),
            "target_table": dst.table("t"),
            "mode": "append",
        },
        connections(src, dst),
    )
    assert error.field == "processes.orders.source.table"
    assert "does not exist" in error.expected


def test_missing_key_column_names_the_field(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    create_orders(src)
    error = _expect_manifest_error(
        {
            "source_table": src.table("orders"),
            "target_table": dst.table("t"),
            "mode": "merge",
            "key": ["order_no"],
        },
        connections(src, dst),
    )
    assert error.field == "processes.orders.strategy.key"
    assert "order_no" in error.expected and "order_id" in error.expected


def test_missing_cursor_column_names_the_field(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    create_orders(src)
    error = _expect_manifest_error(
        {
            "source_table": src.table("orders"),
            "target_table": dst.table("t"),
            "mode": "incremental",
            "cursor": "changed_at",
        },
        connections(src, dst),
    )
    assert error.field == "processes.orders.strategy.cursor"
    assert "changed_at" in error.expected


def test_failing_query_names_the_field(src: Side, tmp_path: Path) -> None:
    error = _expect_manifest_error(
        {
            "source_table": None,
            "query": "SELECT nope FROM orders",
            "target_table": "t",
            "mode": "append",
        },
        connections(src, sqlite_side(tmp_path / "target.db")),
    )
    assert error.field == "processes.orders.source.query"
    assert "nope" in error.expected


def test_unknown_connection_names_the_field(src: Side) -> None:
    error = _expect_manifest_error(
        {"source_table": "orders", "target_table": "t", "mode": "append", "target": "dwh"},
        {"src": src.url},
    )
    assert error.field == "processes.orders.target.connection"


def test_unsupported_url_names_the_connection(src: Side) -> None:
    error = _expect_manifest_error(
        {"source_table": "orders", "target_table": "t", "mode": "append"},
        {"src": src.url, "dst": "mysql://u:p@h/db"},
    )
    assert error.field == "connections.dst"


def test_target_without_the_source_columns_names_the_target(src: Side, tmp_path: Path) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    dst.execute("CREATE TABLE t (order_id integer, customer text)")
    error = _expect_manifest_error(
        {"source_table": "orders", "target_table": "t", "mode": "append"},
        connections(src, dst),
    )
    assert error.field == "processes.orders.target.table"
    assert "amount" in error.expected
    assert dst.query("SELECT count(*) FROM t") == [(0,)]


def test_window_needs_a_cursor(src: Side, tmp_path: Path) -> None:
    conns = connections(src, sqlite_side(tmp_path / "target.db"))
    with pytest.raises(ManifestError) as caught:
        run_transfer(
            process("orders", "t", "append"),
            context(conns, window=("2024-01-01", "2024-01-02")),
        )
    assert caught.value.field == "processes.orders.strategy.cursor"


def test_a_failed_publish_leaves_target_and_ledger_untouched(src: Side, tmp_path: Path) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    dst.execute(
        "CREATE TABLE t (order_id integer, customer text, amount numeric, status text, "
        "updated_at text, CHECK (amount < 10))"
    )
    result = run_transfer(process("orders", "t", "append"), context(connections(src, dst)))
    assert result.status == "failed"
    assert "CHECK constraint" in result.errors[0]
    assert dst.query("SELECT count(*) FROM t") == [(0,)]
    assert dst.query("SELECT count(*) FROM _dpone_loads") == [(0,)]
    assert [t for t in dst.tables() if t.startswith("_dpone_stg_")] == []


def test_target_schema_must_exist(src: Side, tmp_path: Path, pg_url: str) -> None:
    error = _expect_manifest_error(
        {"source_table": "orders", "target_table": "no_such_schema.t", "mode": "append"},
        {"src": src.url, "dst": pg_url},
    )
    assert error.field == "processes.orders.target.table"
    assert "no_such_schema" in error.expected
    error = _expect_manifest_error(
        {"source_table": "orders", "target_table": "analytics.t", "mode": "append"},
        connections(src, sqlite_side(tmp_path / "target.db")),
    )
    assert error.field == "processes.orders.target.table"
