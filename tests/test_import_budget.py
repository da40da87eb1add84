"""What a whole no-op `dpone orchestrate run` imports (issue 13): a module budget, no timing.

The real CLI entry point runs in a fresh interpreter (``dpone_core.cli.main``) on a real
manifest; afterwards the child prints ``sorted(sys.modules)``. A cron user pays every import
on every run, so the heavy packages a run does not need must stay unimported:

* a ``command`` process: no SQLAlchemy, no PostgreSQL driver, no Dagster, no OpenLineage;
* a SQLite -> SQLite transfer: no SQLAlchemy (a plain SQLite URL is read and opened by
  ``sqlite3`` itself), no PostgreSQL driver, no Dagster, no OpenLineage; a SQLite URL with a
  query string still goes through SQLAlchemy's parser (docs/performance.md, "Import budget");
* ``orchestrate run --help``: not even pydantic or YAML.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from tests.support import Workspace

_CHILD = """
import json, sys
from dpone_core.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print("\\nDPONE-MODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: Packages no run of a command or a SQLite-only transfer may import.
_NEVER = {"psycopg", "psycopg2", "psycopg_binary", "asyncpg", "dagster", "dpone_dagster",
          "openlineage", "dlt", "pandas", "requests"}  # fmt: skip


def _modules(ws: Workspace, *args: str) -> tuple[int, set[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    line = proc.stdout.rsplit("DPONE-MODULES ", 1)
    assert len(line) == 2, proc.stdout + proc.stderr
    doc = json.loads(line[1])
    modules = set(doc["modules"])
    return doc["code"], modules, {m.split(".")[0] for m in modules}


def test_noop_command_run_imports_no_database_dagster_or_lineage(ws: Workspace) -> None:
    ws.write_manifest({"job": {"kind": "command", "command": [sys.executable, "-c", "pass"]}})
    code, _, top = _modules(
        ws, "orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", "r1"
    )
    assert code == 0
    assert ws.state("r1")["status"] == "committed"
    assert "dpone_core" in top and "pydantic" in top  # the probe sees the run's imports
    banned = _NEVER | {"sqlalchemy", "sqlite3"}
    assert top.isdisjoint(banned), sorted(top & banned)


def test_sqlite_to_sqlite_transfer_imports_no_sqlalchemy_nor_postgres(ws: Workspace) -> None:
    with sqlite3.connect(ws.root / "shop.db") as db:
        db.execute("create table orders (order_id integer primary key, amount integer)")
        db.executemany("insert into orders values (?, ?)", [(i, i) for i in range(50)])
    ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )
    code, modules, top = _modules(
        ws, "orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", "t1"
    )
    assert code == 0
    with sqlite3.connect(ws.root / "warehouse.db") as db:
        assert db.execute("select count(*) from landing_orders").fetchone() == (50,)
    assert "dpone_core.executor.transfer.engine" in modules  # the probe saw the load
    banned = _NEVER | {"sqlalchemy"}
    assert top.isdisjoint(banned), sorted(top & banned)


def test_help_imports_no_models(ws: Workspace) -> None:
    code, _, top = _modules(ws, "orchestrate", "run", "--help")
    assert code == 0
    assert top.isdisjoint(_NEVER | {"sqlalchemy", "pydantic", "yaml", "fasteners"})
