"""``dpone ops`` on the command line: exit codes, one-line errors (file, field, expectation)."""

from __future__ import annotations

import json

import pytest

from tests.ops.documents import report_doc, run_result_doc
from tests.support.workspace import Workspace


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ops", "run-registry", "--run-result", "missing.json"], "missing.json: cannot read"),
        (["ops", "run-registry", "--run-result", "bad.json"], "bad.json: passed: expected"),
        (
            ["ops", "run-registry", "--run-result", "ok.json", "--artifact", "nope"],
            "--artifact: expected NAME=PATH",
        ),
        (
            ["ops", "run-registry", "--run-result", "ok.json", "--artifact", "x=missing"],
            "--artifact x: missing: cannot read",
        ),
        (
            ["ops", "run-registry", "--run-result", "ok.json", "--parent-run", "a/b"],
            "--parent-run: expected '<namespace>/<job name>/<run uuid>'",
        ),
        (
            ["ops", "run-registry", "--run-result", "ok.json", "--registry", "postgresql"],
            "--registry: postgresql: reads the DSN from DPONE_ORCHESTRATION_DSN",
        ),
        (["ops", "runs", "--date", "yesterday"], "--date: yesterday: expected YYYY-MM-DD"),
        (["ops", "lineage-export", "--run-registry-entry", "ok.json"], "expected a registry entry"),
        (["ops", "lineage-export", "--run-id", "nope"], "--run-id: nope: no entry"),
        (["ops", "lineage-flush"], "transport: none is configured"),
        (["ops", "lineage-export", "--run-registry-entry", "x", "--run-id", "y"], "not allowed"),
    ],
)
def test_invalid_input_is_one_line_and_exit_2(
    ws: Workspace, args: list[str], expected: str
) -> None:
    (ws.root / "ok.json").write_text(json.dumps(run_result_doc()))
    (ws.root / "bad.json").write_text(json.dumps({**report_doc(), "passed": "yes"}))
    proc = ws.dpone(*args, env={"DPONE_ORCHESTRATION_DSN": ""})
    assert proc.returncode == 2, proc.stderr
    assert expected in one_line(proc.stderr)
    assert proc.stdout == ""


def test_register_list_conflict_and_a_refused_report(ws: Workspace) -> None:
    (ws.root / "ok.json").write_text(json.dumps(run_result_doc()))
    (ws.root / "other.json").write_text(json.dumps(run_result_doc(passed=False)))
    (ws.root / "refused.json").write_text(json.dumps(report_doc(status="blocked", ran=False)))
    first = ws.dpone("ops", "run-registry", "--run-result", "ok.json", "--format", "json")
    assert first.returncode == 0 and json.loads(first.stdout)["created"], first.stderr
    again = ws.dpone("ops", "run-registry", "--run-result", "ok.json")
    assert again.returncode == 0 and "Already registered (identical)" in again.stdout
    clash = ws.dpone("ops", "run-registry", "--run-result", "other.json")
    assert clash.returncode == 1 and "already registered" in one_line(clash.stderr)
    refused = ws.dpone("ops", "run-registry", "--run-result", "refused.json", "--format", "json")
    assert refused.returncode == 0 and "ran nothing" in one_line(refused.stderr)
    assert json.loads(refused.stdout)["registered"] is False
    listed = ws.dpone("ops", "runs", "--status", "passed")
    assert (
        listed.returncode == 0 and "shop.orders_2026_11_30 | 1 | orders | passed" in listed.stdout
    )
    entry = json.loads(first.stdout)["entry_path"]
    exported = ws.dpone(
        "ops",
        "lineage-export",
        "--run-registry-entry",
        entry,
        "--output",
        "mssql=landing.orders",
        "--manifest",
        "gone.yml",
    )
    assert exported.returncode == 2
    assert "datasets come from the manifest unless --input and --output" in exported.stderr
    both = ws.dpone(
        "ops",
        "lineage-export",
        "--run-registry-entry",
        entry,
        "--no-emit",
        "--input",
        "postgres=public.orders",
        "--output",
        "mssql=landing.orders",
    )
    assert both.returncode == 0 and "COMPLETE at" in both.stdout, both.stderr
