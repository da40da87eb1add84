"""Fixtures of the ops tests: a shop workspace on SQLite, and a registry on each store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.workspace import Workspace

FILES = "files"
POSTGRESQL = "postgresql"


def seed_orders(path: Path, rows: int = 5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "create table if not exists orders (order_id integer primary key, amount real,"
            " status text, updated_at text)"
        )
        db.executemany(
            "insert or replace into orders values (?, ?, ?, ?)",
            [(i, i * 1.5, "placed", f"2026-11-01T00:{i:02d}:00") for i in range(1, rows + 1)],
        )


@pytest.fixture
def shop(ws: Workspace) -> Workspace:
    """A workspace with ``shop.yml``: ``orders`` (transfer) and ``report`` (command)."""
    seed_orders(ws.root / "data" / "shop.db")
    ws.write_manifest(
        {
            "orders": {
                "description": "Orders into the landing zone",
                "owners": ["team:data"],
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "merge", "key": ["order_id"]},
                "deps": ["shop.customers"],
            },
            "report": {
                "kind": "command",
                "command": ["python3", "-c", "print('report')"],
                "deps": ["warehouse.landing_orders"],
            },
        },
        name="shop.yml",
        connections={
            "shop": "sqlite:///data/shop.db",
            "warehouse": "sqlite:///data/warehouse.db",
        },
    )
    return ws


@dataclass(frozen=True)
class RegistrySite:
    kind: str
    #: The ``--registry`` value.
    value: str
    schema: str | None
    env: dict[str, str]

    def open(self):  # type: ignore[no-untyped-def]
        from dpone_core.ops.registry_select import open_registry

        return open_registry(self.value, schema=self.schema, environ=self.env)

    def cli(self) -> list[str]:
        return ["--registry", self.value] + (
            ["--backend-schema", self.schema] if self.schema else []
        )


@pytest.fixture(params=[FILES, POSTGRESQL])
def registry_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistrySite]:
    if request.param == FILES:
        yield RegistrySite(FILES, str(tmp_path / "registry"), None, {})
        return
    from tests.support.pg import TEST_DSN, drop_schema, new_schema

    schema = new_schema()
    yield RegistrySite(POSTGRESQL, "postgresql", schema, {"DPONE_ORCHESTRATION_DSN": TEST_DSN})
    drop_schema(schema)
