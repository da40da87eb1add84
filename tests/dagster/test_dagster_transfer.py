"""Transfers materialized through Dagster: rows, load id, watermark, ledger check, partitions,
and a run across two manifests in lineage order (real SQLite files)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_support import (
    check_evaluations,
    materializations,
    query,
    run,
    seed_orders,
    step_failure,
)

from dpone_dagster import build_dpone_assets
from tests.support.workspace import Workspace

DAY1 = [
    (1, "placed", 100, "2026-01-01T08:00:00+00:00"),
    (2, "placed", 200, "2026-01-01T09:00:00+00:00"),
    (3, "placed", 300, "2026-01-02T10:00:00+00:00"),
    (4, "placed", 400, "2026-01-02T11:00:00+00:00"),
    (5, "placed", 500, "2026-01-03T12:00:00+00:00"),
]


def _shop(ws: Workspace) -> Path:
    seed_orders(ws.root / "shop.db", DAY1)
    return ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "incremental", "key": ["order_id"], "cursor": "updated_at"},
            }
        },
        name="shop.yml",
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )


def _reporting(ws: Workspace) -> Path:
    return ws.write_manifest(
        {
            "daily_orders": {
                "source": {"connection": "warehouse", "table": "landing_orders"},
                "target": {"connection": "reporting", "table": "daily_orders"},
                "strategy": {"mode": "merge", "key": ["order_id"], "cursor": "updated_at"},
                "partitions": {"granularity": "daily", "start": "2026-01-01"},
            }
        },
        name="reporting.yml",
        connections={"warehouse": "sqlite:///warehouse.db", "reporting": "sqlite:///reporting.db"},
    )


def test_transfer_metadata_ledger_and_check(ws: Workspace) -> None:
    assets = build_dpone_assets([_shop(ws)])
    instance = dg.DagsterInstance.ephemeral()
    result = run(assets, ws, instance=instance)
    assert result.success, step_failure(result)
    (md,) = materializations(result)["warehouse/landing_orders"]
    assert md["dpone/status"] == "committed"
    assert (md["dpone/extracted_rows"], md["dpone/inserted_rows"], md["dpone/updated_rows"]) == (
        5,
        5,
        0,
    )
    assert md["dpone/final_rows"] == 5 and md["dagster/row_count"] == 5
    assert md["dpone/watermark_after"] == "2026-01-03T12:00:00+00:00"
    # The table as catalogs name it, and its real columns as the database has them.
    assert md["dagster/table_name"] == "warehouse.main.landing_orders"
    columns = {c.name: c for c in md["dagster/column_schema"].columns}
    assert list(columns) == ["order_id", "status", "amount_cents", "updated_at"]
    real = query(
        ws.root / "warehouse.db", "select name, type from pragma_table_info('landing_orders')"
    )
    assert [(c.name, c.type) for c in columns.values()] == real
    # What happened comes first; the long history last.
    keys = list(md)
    assert keys[:2] == ["dpone/status", "dpone/run_id"]
    assert keys.index("dpone/inserted_rows") < keys.index("dpone/transitions")
    assert keys[-1] == "dpone/report"
    ledger = query(
        ws.root / "warehouse.db",
        "select run_id, status, inserted_rows, watermark_after from _dpone_loads where load_id = ?",
        (md["dpone/load_id"],),
    )
    assert ledger == [(f"shop.orders_{result.run_id}", "committed", 5, "2026-01-03T12:00:00+00:00")]
    (check,) = check_evaluations(result)["warehouse/landing_orders"]
    assert check.passed
    assert check.metadata["dpone/ledger_status"].value == "committed"
    assert check.metadata["dpone/load_id"].value == md["dpone/load_id"]

    # A new Dagster run is a new logical run: the incremental moves only what changed (it
    # re-reads the row at the watermark too, docs/manifests.md, and merges it unchanged).
    seed_orders(
        ws.root / "shop.db",
        [
            (2, "shipped", 200, "2026-01-04T08:00:00+00:00"),
            (6, "placed", 600, "2026-01-04T09:00:00+00:00"),
        ],
    )
    second = run(assets, ws, instance=instance)
    (md2,) = materializations(second)["warehouse/landing_orders"]
    assert (md2["dpone/extracted_rows"], md2["dpone/inserted_rows"], md2["dpone/updated_rows"]) == (
        3,
        1,
        1,
    )
    assert md2["dpone/watermark_before"] == "2026-01-03T12:00:00+00:00"
    assert md2["dpone/final_rows"] == 6 and md2["dpone/load_id"] != md["dpone/load_id"]

    # The check on its own verifies the latest materialization against the ledger: remove
    # the ledger row behind Dagster's back and it fails.
    query(
        ws.root / "warehouse.db",
        "delete from _dpone_loads where load_id = ?",
        (md2["dpone/load_id"],),
    )
    checked = run(
        assets,
        ws,
        instance=instance,
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["warehouse", "landing_orders"])),
    )
    assert not materializations(checked)
    (lone,) = check_evaluations(checked)["warehouse/landing_orders"]
    assert not lone.passed
    assert lone.metadata["dpone/run_id"].value == f"shop.orders_{second.run_id}"
    assert lone.metadata["dpone/ledger_status"].value == "missing"


def test_lineage_run_across_manifests_and_partitioned_window(ws: Workspace) -> None:
    assets = build_dpone_assets([_shop(ws), _reporting(ws)])
    instance = dg.DagsterInstance.ephemeral()
    # Upstream first (the asset graph orders the two manifests' steps).
    upstream = run(assets, ws, instance=instance, selection=["warehouse/landing_orders"])
    assert upstream.success
    for key, ids in (("2026-01-01", [1, 2]), ("2026-01-02", [3, 4]), ("2026-01-03", [5])):
        result = run(
            assets, ws, instance=instance, partition_key=key, selection=["reporting/daily_orders"]
        )
        assert result.success, step_failure(result)
        (md,) = materializations(result)["reporting/daily_orders"]
        assert md["dpone/run_id"] == f"reporting.daily_orders_{key.replace('-', '_')}"
        assert md["dpone/extracted_rows"] == len(ids)
        # A partition's row count is its window's, never the whole table's.
        assert md["dagster/partition_row_count"] == len(ids)
        assert "dagster/row_count" not in md
        rows = query(
            ws.root / "reporting.db",
            "select order_id from daily_orders where updated_at >= ? and updated_at < ? "
            "order by order_id",
            (f"{key}T00:00:00+00:00", f"{key}T23:59:59+00:00"),
        )
        assert [r[0] for r in rows] == ids
    assert query(ws.root / "reporting.db", "select count(*) from daily_orders") == [(5,)]


def test_one_run_materializes_both_manifests_in_lineage_order(ws: Workspace) -> None:
    shop = _shop(ws)
    reporting = ws.write_manifest(
        {
            "snapshot": {
                "source": {"connection": "warehouse", "table": "landing_orders"},
                "target": {"connection": "reporting", "table": "orders_snapshot"},
                "strategy": {"mode": "replace"},
            }
        },
        name="snap.yml",
        connections={"warehouse": "sqlite:///warehouse.db", "reporting": "sqlite:///reporting.db"},
    )
    result = run(build_dpone_assets([shop, reporting]), ws)
    assert result.success, step_failure(result)
    order = [
        e.step_materialization_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    ]
    assert order == ["warehouse/landing_orders", "reporting/orders_snapshot"]
    assert materializations(result)["reporting/orders_snapshot"][0]["dagster/row_count"] == 5
