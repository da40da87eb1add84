"""The engine behind ``RunManifestService``: a manifest file, its connections, a real load."""

from __future__ import annotations

import io
from pathlib import Path

from transfer_support import Side, create_orders, rows, seed_orders, sqlite_side

from dpone_core.executor import RunManifestService
from dpone_core.executor.request import RunRequest


def test_manifest_transfer_through_the_service(tmp_path: Path, pg_side: Side) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source = sqlite_side(data / "shop.db")
    create_orders(source)
    seed_orders(source, range(1, 26))
    manifest = tmp_path / "orders.yml"
    manifest.write_text(
        "version: 1\n"
        "connections:\n"
        "  shop: sqlite:///data/shop.db\n"  # relative to the manifest
        f"  warehouse: {pg_side.url}\n"
        "processes:\n"
        "  orders:\n"
        "    source: {connection: shop, table: orders}\n"
        f"    target: {{connection: warehouse, table: {pg_side.table('landing_orders')}}}\n"
        "    strategy: {mode: merge, key: [order_id], cursor: updated_at}\n"
        "    batch_size: 10\n"
    )
    progress = io.StringIO()
    result = RunManifestService(progress=progress).execute(
        RunRequest(manifest_path=str(manifest), run_id="orders_1")
    )
    assert result.passed, result.result.errors
    assert result.result.inserted_rows == result.result.final_rows == 25
    assert result.result.load_id is not None
    assert rows(pg_side, "landing_orders", "order_id") == [
        (i,) for i in sorted(range(1, 26), key=repr)
    ]
    assert "committed into" in progress.getvalue()
