"""The ``dpone/*`` contract has one owner: dpone_dagster.metadata.

Every key a builder there produces is in its table (METADATA_KEYS,
DEFINITION_METADATA_KEYS, CHECK_METADATA_KEYS), every table key can be produced,
docs/dagster.md lists the same keys, and no other module spells a key.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_support import REPO, plain

from dpone_core.executor.transfer import TargetColumnInfo, TargetTable
from dpone_core.manifest import load_manifest
from dpone_core.report import OrchestratedRunReport
from dpone_dagster import (
    CHECK_METADATA_KEYS,
    DEFINITION_METADATA_KEYS,
    METADATA_KEYS,
    RESUME_POLICY_TAG,
)
from dpone_dagster.metadata import (
    check_metadata,
    definition_metadata,
    failures_metadata,
    read_runtime_metadata,
    report_metadata,
    run_id_of,
    runtime_metadata,
)
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.process import DponeProcess, processes_of
from tests.support.workspace import Workspace

DOC = (REPO / "docs" / "dagster.md").read_text()
PACKAGE = REPO / "dpone_dagster"


def _doc_table_keys(heading: str) -> set[str]:
    """Backquoted first cells of the tables between ``heading`` and the next heading."""
    section = DOC.split(f"\n{heading}\n", 1)[1]
    section = re.split(r"\n#{1,3} ", section, maxsplit=1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def _report(**changes: Any) -> OrchestratedRunReport:
    """A committed report with every optional part filled in."""
    fields: dict[str, Any] = {
        "passed": True,
        "status": "committed",
        "run_id": "orders_r1",
        "process": "transfer",
        "selector": "orders",
        "manifest_path": "/m.yml",
        "lock_key": "orders",
        "lock_acquired": True,
        "stale_lock_replaced": False,
        "resume_policy": "fail",
        "decision": "admitted",
        "run_result": {
            "attempts": [{"attempt": 1, "status": "passed", "duration_seconds": 0.5}],
            "result": {
                "extracted_rows": 3,
                "inserted_rows": 2,
                "updated_rows": 1,
                "final_rows": 7,
                "errors": ["boom"],
                "load_id": "load-1",
                "watermark_before": "2026-01-01",
                "watermark_after": 5,
                "exit_code": 0,
            },
        },
        "scheduler_handoff": {},
        "job_state": {
            "attempt": 2,
            "transitions": [{"status": "committed"}],
            "scheduler": {"kind": "cron", "name": None, "run_id": None},
        },
        "job_state_path": "/s/orders_r1.job_state.json",
        "output_dir": "/o/orders_r1",
        "evidence": {
            "report_json": "/o/orders_r1/orchestrated_run.json",
            "report_md": "/o/orders_r1/orchestrated_run.md",
            "invocation_report_json": "/o/orders_r1/invocations/1_committed/orchestrated_run.json",
            "attempt_report_json": "/o/orders_r1/invocations/1_committed/orchestrated_run.json",
        },
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01Z",
        "duration_seconds": 1.0,
    }
    return OrchestratedRunReport(**{**fields, **changes})


def _transfer(ws: Workspace) -> DponeProcess:
    manifest = ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "merge", "key": ["order_id"], "cursor": "updated_at"},
                "concurrency_key": "warehouse",
                "partitions": {"granularity": "daily", "start": "2026-01-01"},
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )
    (process,) = processes_of(load_manifest(manifest))
    return process


def test_every_materialization_key_is_in_the_table_and_every_table_key_is_produced() -> None:
    window = PartitionWindow(key="2026-01-01", start="a", end="b")
    table = TargetTable("wh.main.orders", [TargetColumnInfo("id", "INTEGER", nullable=False)])
    produced = set(report_metadata(_report(), window=window, reused=True, table=table))
    produced |= set(report_metadata(_report()))  # unpartitioned: dagster/row_count
    produced |= set(failures_metadata(None, []))
    # Added by registry_link.register_committed with a registry (test_dagster_registry.py).
    produced |= {"dpone/registry_entry"}
    assert produced == set(METADATA_KEYS)


def test_every_definition_key_is_in_the_table_and_every_table_key_is_produced(
    ws: Workspace,
) -> None:
    process = _transfer(ws)
    produced = set(definition_metadata(process)) | set(runtime_metadata(process, "orders"))
    assert produced == set(DEFINITION_METADATA_KEYS)


def test_every_check_key_is_in_the_table_and_every_table_key_is_produced() -> None:
    produced = check_metadata(
        run_id="r", job_state_file="/s", job_state_status="committed", load_id="l"
    )
    assert set(produced) == set(CHECK_METADATA_KEYS)
    assert plain(produced)["dpone/ledger_status"] == "missing"


def test_the_docs_tables_list_exactly_the_keys() -> None:
    assert _doc_table_keys("## Materialization metadata") == set(METADATA_KEYS)
    assert _doc_table_keys("### Definition metadata") == set(DEFINITION_METADATA_KEYS)
    assert _doc_table_keys("## Asset checks") == set(CHECK_METADATA_KEYS)


def test_the_invocation_report_key_and_its_older_name_point_at_the_same_file() -> None:
    path = "/o/orders_r1/attempts/1_committed/orchestrated_run.json"
    # A report written before invocations were named so has only the older entry.
    old = _report(evidence={"attempt_report_json": path})
    md = plain(report_metadata(old))
    assert md["dpone/invocation_report_json"] == md["dpone/attempt_report_json"] == path
    new = plain(report_metadata(_report()))
    assert new["dpone/invocation_report_json"].endswith(
        "invocations/1_committed/orchestrated_run.json"
    )
    assert new["dpone/attempt_report_json"] == new["dpone/invocation_report_json"]


def test_runtime_metadata_reads_back(ws: Workspace) -> None:
    process = _transfer(ws)
    spec = dg.AssetSpec("x", metadata=runtime_metadata(process, "prefix"))
    runtime = read_runtime_metadata(spec)
    assert (runtime.selector, runtime.kind, runtime.run_id_prefix) == (
        "orders",
        "transfer",
        "prefix",
    )
    assert runtime.partitioned and runtime.manifest_sha256 == process.manifest.sha256
    assert run_id_of(report_metadata(_report())) == "orders_r1"
    assert run_id_of({}) is None


def _string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    docstrings = {
        ast.get_docstring(node, clean=False)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
    }
    return [s for s in strings if s not in docstrings]


def test_no_module_but_metadata_spells_a_key() -> None:
    key = re.compile(r"^(dpone|dagster)/[a-z_0-9]+$")
    spelled = {
        path.name: [s for s in _string_constants(path) if key.match(s)]
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "metadata.py"
    }
    assert {name: keys for name, keys in spelled.items() if keys} == {}
    assert RESUME_POLICY_TAG == "dpone/resume_policy"
