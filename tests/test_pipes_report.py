"""What dpone reports through Dagster Pipes is the same ``dpone/*`` contract, with no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpone_core.metadata_keys import METADATA_KEYS
from dpone_core.report import OrchestratedRunReport
from dpone_dagster.pipes_report import PIPES_CONTEXT_ENV, launched_by_dagster_pipes, pipes_metadata
from tests.support.workspace import Workspace, recorder_command


def _report(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> OrchestratedRunReport:
    _code, data, err = ws.orchestrate("--manifest", "m.yml", *args, env=env)
    assert data, err
    return OrchestratedRunReport.model_validate(data)


def test_pipes_metadata_uses_only_documented_keys_with_their_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path)
    ws.write_manifest({"job": {"kind": "command", "command": recorder_command()}})
    report = _report(ws, "--execution-date", "2026-11-30")
    monkeypatch.chdir(tmp_path)  # dpone reports from its own working directory
    md = pipes_metadata(report)
    assert set(md) <= set(METADATA_KEYS)
    assert md["dpone/status"] == {"type": "text", "raw_value": "committed"}
    assert md["dpone/run_id"]["raw_value"] == "m.job_2026_11_30"
    assert md["dpone/attempt"] == {"type": "int", "raw_value": 1}
    assert md["dpone/job_state_file"]["type"] == "path"
    invocation = Path(md["dpone/invocation_report_json"]["raw_value"])
    assert invocation.is_absolute() and invocation.is_file()


def test_pipes_metadata_masks_secrets(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    secret = "pipes-s3cret-token-9"
    ws.write_manifest(
        {"job": {"kind": "command", "command": recorder_command("--echo", "${MY_API_TOKEN}")}}
    )
    env = {"MY_API_TOKEN": secret, "PATH": "/usr/bin:/bin"}
    report = _report(ws, "--run-id", f"run-{secret}", env=env)
    from dpone_core.redact import register_secret

    register_secret(secret)  # the reporting process knows it as dpone's CLI would
    assert secret not in repr(pipes_metadata(report))


def test_only_a_pipes_launch_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIPES_CONTEXT_ENV, raising=False)
    assert not launched_by_dagster_pipes()
    monkeypatch.setenv(PIPES_CONTEXT_ENV, "")
    assert not launched_by_dagster_pipes()
    monkeypatch.setenv(PIPES_CONTEXT_ENV, "eJw=")
    assert launched_by_dagster_pipes()
