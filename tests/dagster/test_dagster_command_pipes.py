"""Command processes under Dagster: a Pipes session per try, and live compute logs.

Real Dagster (``dagster.materialize``), real commands that use the real
``dagster_pipes`` client, real compute log capture on a real instance. The
command scripts are written into the test's workspace and run with this
interpreter, which has ``dagster_pipes``.

No ``from __future__ import annotations`` here: Dagster reads the decorated
functions' annotations (``dg.AssetExecutionContext``, ``DponeResource``) as objects.
"""

import json
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import (
    PYTHON,
    REPO,
    check_evaluations,
    materializations,
    resource,
    run,
)

from dpone_core.manifest import load_manifest
from dpone_dagster import DponeResource, build_dpone_assets, build_dpone_specs
from dpone_dagster.process import DponeProcess, processes_of
from tests.support.workspace import Workspace

#: Reports what the command saw and ``rows_written``; on try 1 it fails when asked to.
REPORT_PY = """\
import os, sys
from dagster_pipes import open_dagster_pipes

with open_dagster_pipes() as pipes:
    try_number = pipes.extras["dpone_try"]
    pipes.log.info(f"reporting from try {try_number}")
    pipes.report_asset_materialization(
        metadata={
            "rows_written": 42 if try_number > 1 or not os.environ.get("FAIL_FIRST") else -1,
            "seen_asset": pipes.asset_key,
            "seen_try": try_number,
            "seen_dagster_run": os.environ["DAGSTER_RUN_ID"],
        }
    )
    for name in os.environ.get("CHECKS", "").split():
        pipes.report_asset_check(name, passed=True, metadata={"checked_rows": 42})
print(f"try {try_number} done", flush=True)
sys.exit(1 if os.environ.get("FAIL_FIRST") and try_number == 1 else 0)
"""


def _script(ws: Workspace, name: str, text: str) -> list[str]:
    (ws.root / name).write_text(textwrap.dedent(text))
    return [PYTHON, name]


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


def test_command_metadata_reaches_the_materialization(ws: Workspace) -> None:
    report = _script(ws, "report.py", REPORT_PY)
    manifest = ws.write_manifest(
        {
            "load": {"kind": "command", "command": report},
            "publish": {"kind": "command", "command": report},
        },
        name="shop.yml",
    )
    instance = dg.DagsterInstance.ephemeral()
    result = run(build_dpone_assets([manifest]), ws, instance=instance)
    assert result.success
    mats = materializations(result)
    for asset in ("command/shop/load", "command/shop/publish"):
        (md,) = mats[asset]
        assert md["rows_written"] == 42
        # One session per process: the command sees its own asset, in a two-asset step.
        assert md["seen_asset"] == asset
        assert md["seen_try"] == 1
        assert md["seen_dagster_run"] == result.run_id
        assert md["dpone/status"] == "committed" and md["dpone/exit_code"] == 0
        assert list(md).index("dpone/status") < list(md).index("rows_written")
    assert "reporting from try 1" in _messages(instance, result.run_id)


def test_a_partitioned_command_sees_its_partition(ws: Workspace) -> None:
    script = _script(
        ws,
        "partition.py",
        """\
        from dagster_pipes import open_dagster_pipes
        with open_dagster_pipes() as pipes:
            window = pipes.partition_time_window
            pipes.report_asset_materialization(
                metadata={"seen_partition": pipes.partition_key, "seen_start": window["start"]}
            )
        """,
    )
    partitions = {"granularity": "daily", "start": "2026-11-01"}
    process = {"kind": "command", "command": script, "partitions": partitions}
    manifest = ws.write_manifest({"daily": process}, name="p.yml")
    result = run(build_dpone_assets([manifest]), ws, partition_key="2026-11-02")
    assert result.success
    (md,) = materializations(result)["command/p/daily"]
    assert md["seen_partition"] == "2026-11-02" == md["dpone/partition_key"]
    assert md["seen_start"] == "2026-11-02T00:00:00+00:00"


def test_only_the_committed_try_counts(ws: Workspace) -> None:
    report = _script(ws, "report.py", REPORT_PY)
    manifest = ws.write_manifest(
        {"load": {"kind": "command", "command": report, "env": {"FAIL_FIRST": "1"}}},
        name="shop.yml",
    )
    instance = dg.DagsterInstance.ephemeral()
    result = run(
        build_dpone_assets([manifest]),
        ws,
        instance=instance,
        resource_overrides={"retry_attempts": 1},
    )
    assert result.success
    (md,) = materializations(result)["command/shop/load"]
    assert md["dpone/tries"] == 2
    assert (md["rows_written"], md["seen_try"]) == (42, 2)  # try 1 reported -1: discarded
    messages = _messages(instance, result.run_id)
    assert "reporting from try 1" in messages and "reporting from try 2" in messages
    (discarded,) = [m for m in messages if "is discarded" in m]
    assert "try 1 failed" in discarded and "rows_written" in discarded


def test_a_failed_run_reports_nothing_of_its_command(ws: Workspace) -> None:
    report = _script(ws, "report.py", REPORT_PY)
    manifest = ws.write_manifest(
        {"load": {"kind": "command", "command": report, "env": {"FAIL_FIRST": "1"}}},
        name="shop.yml",
    )
    result = run(build_dpone_assets([manifest]), ws)
    assert not result.success
    assert materializations(result) == {}


def test_dpone_keys_win_over_the_command(ws: Workspace) -> None:
    script = _script(
        ws,
        "clash.py",
        """\
        from dagster_pipes import open_dagster_pipes
        with open_dagster_pipes() as pipes:
            pipes.report_asset_materialization(
                metadata={"dpone/status": "hacked", "dpone/mine": 1, "rows_written": 7}
            )
        """,
    )
    manifest = ws.write_manifest({"load": {"kind": "command", "command": script}}, name="s.yml")
    instance = dg.DagsterInstance.ephemeral()
    result = run(build_dpone_assets([manifest]), ws, instance=instance)
    (md,) = materializations(result)["command/s/load"]
    assert md["dpone/status"] == "committed" and "dpone/mine" not in md
    assert md["rows_written"] == 7
    (warning,) = [m for m in _messages(instance, result.run_id) if "dpone sets itself" in m]
    assert "dpone/mine, dpone/status" in warning


def _with_check(processes: list[DponeProcess], name: str) -> dg.AssetsDefinition:
    """A dpone multi-asset whose assets also declare the check ``name``."""
    specs = build_dpone_specs(processes)

    @dg.multi_asset(
        specs=specs,
        check_specs=[dg.AssetCheckSpec(name, asset=spec.key) for spec in specs],
        can_subset=True,
    )
    def shop(context: dg.AssetExecutionContext, dpone: DponeResource) -> Iterator[Any]:
        yield from dpone.materialize(context)

    return shop


def test_declared_checks_are_recorded_and_others_warned_about(ws: Workspace) -> None:
    report = _script(ws, "report.py", REPORT_PY)
    manifest = ws.write_manifest(
        {
            "load": {
                "kind": "command",
                "command": report,
                "env": {"CHECKS": "rows_match undeclared dpone_committed"},
            }
        },
        name="shop.yml",
    )
    processes = processes_of(load_manifest(manifest))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [_with_check(processes, "rows_match")],
        resources={"dpone": resource(ws)},
        instance=instance,
    )
    assert result.success
    (evaluation,) = check_evaluations(result)["command/shop/load"]
    assert evaluation.check_name == "rows_match" and evaluation.passed
    assert evaluation.metadata["checked_rows"].value == 42
    messages = _messages(instance, result.run_id)
    assert any("'undeclared', which the asset does not declare" in m for m in messages)
    assert any("'dpone_committed', which dpone evaluates itself" in m for m in messages)


def test_command_pipes_metadata_is_redacted(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Pipes-Secret-0d9e77"
    monkeypatch.setenv("DPONE_TEST_API_TOKEN", secret)
    script = _script(
        ws,
        "leak.py",
        """\
        import os
        from dagster_pipes import open_dagster_pipes
        token = os.environ["DPONE_TEST_API_TOKEN"]
        with open_dagster_pipes() as pipes:
            pipes.log.warning(f"token is {token}")
            pipes.report_asset_materialization(
                metadata={
                    "token": token,
                    "nested": {"type": "json", "raw_value": {"url": f"https://u:{token}@h/x"}},
                }
            )
        print(f"stdout token {token}", flush=True)
        """,
    )
    manifest = ws.write_manifest({"load": {"kind": "command", "command": script}}, name="s.yml")
    instance = dg.DagsterInstance.ephemeral()
    result = run(build_dpone_assets([manifest]), ws, instance=instance)
    assert result.success
    (md,) = materializations(result)["command/s/load"]
    assert md["token"] == "***"
    assert secret not in json.dumps(md["nested"])
    logs = instance.all_logs(result.run_id)
    assert secret not in dg.serialize_value(logs)
    assert "token is ***" in [entry.user_message for entry in logs]


# -- live compute logs ----------------------------------------------------------------------

#: Prints a line to each stream, waits (up to a minute) for the test's sentinel file,
#: then prints more: the first lines can only be in the compute logs before the end if
#: they are forwarded live.
SLOW_PY = """\
import os, sys, time
print("first line out", flush=True)
print("first line err", file=sys.stderr, flush=True)
deadline = time.time() + 60
while not os.path.exists("sentinel") and time.time() < deadline:
    time.sleep(0.05)
print("saw sentinel" if os.path.exists("sentinel") else "no sentinel", flush=True)
for n in range(3):
    print(f"later line {n}", flush=True)
    time.sleep(0.3)
print("secret", os.environ["DPONE_TEST_DB_PASSWORD"], flush=True)
"""


def _captured(instance: dg.DagsterInstance, run_id: str) -> tuple[str, str] | None:
    """The run's captured stdout and stderr so far (None before capture started)."""
    captured = instance.all_logs(run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED)
    if not captured:
        return None
    file_key = captured[0].get_dagster_event().logs_captured_data.file_key
    manager = instance.compute_log_manager
    log = manager.get_log_data(manager.build_log_key_for_run(run_id, file_key))
    return (
        (log.stdout or b"").decode("utf-8", "replace"),
        (log.stderr or b"").decode("utf-8", "replace"),
    )


def test_command_output_reaches_the_compute_logs_live(
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Compute-Log-Pw-41c2"
    monkeypatch.setenv("DPONE_TEST_DB_PASSWORD", secret)
    script = _script(ws, "slow.py", SLOW_PY)
    manifest = ws.write_manifest({"slow": {"kind": "command", "command": script}}, name="s.yml")
    assets = build_dpone_assets([manifest])
    home = tmp_path_factory.mktemp("dagster_home")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        outcome: dict[str, Any] = {}

        def materialize() -> None:
            outcome["result"] = run(assets, ws, instance=instance)

        worker = threading.Thread(target=materialize, daemon=True)
        worker.start()
        started = time.monotonic()
        seen_live: tuple[str, str] | None = None
        try:
            while time.monotonic() - started < 30 and worker.is_alive():
                runs = instance.get_runs()
                logs = _captured(instance, runs[0].run_id) if runs else None
                if logs and "first line out" in logs[0] and "first line err" in logs[1]:
                    seen_live = logs
                    break
                time.sleep(0.05)
        finally:
            (ws.root / "sentinel").touch()  # never leave the command waiting
            worker.join(60)
        assert seen_live is not None, "the first lines never reached the compute logs live"
        assert "saw sentinel" not in seen_live[0]  # read while the command was waiting

        result = outcome["result"]
        assert result.success
        stdout, stderr = _captured(instance, result.run_id) or ("", "")
    assert "first line out" in stdout and "saw sentinel" in stdout
    assert [f"later line {n}" in stdout for n in range(3)] == [True] * 3
    assert "first line err" in stderr and "first line err" not in stdout
    assert "secret ***" in stdout and secret not in stdout + stderr
    # The report still keeps the tails.
    (md,) = materializations(result)["command/s/slow"]
    assert "later line 2" in md["dpone/report"]
    assert secret not in md["dpone/report"]


def test_cli_stdout_carries_only_the_report(ws: Workspace) -> None:
    script = _script(
        ws,
        "chatty.py",
        """\
        import sys
        from dagster_pipes import open_dagster_pipes
        print("chatty stdout line", flush=True)
        print("chatty stderr line", file=sys.stderr, flush=True)
        with open_dagster_pipes() as pipes:  # not launched by Dagster: a no-op context
            pipes.report_asset_materialization(metadata={"rows_written": 42})
        """,
    )
    ws.write_manifest({"chatty": {"kind": "command", "command": script}})
    proc = ws.dpone("orchestrate", "run", "--manifest", "m.yml", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # the whole of stdout is the one report
    assert report["status"] == "committed"
    tails = report["run_result"]["result"]
    assert "chatty stdout line" in tails["stdout_tail"]
    assert "chatty stderr line" in tails["stderr_tail"]
    # The CLI does not stream a command's output: it is in the report only.
    assert "chatty stdout line" not in proc.stderr
    assert "chatty stderr line" not in proc.stderr


def test_command_under_a_dpone_launched_by_pipes_gets_no_session(ws: Workspace) -> None:
    """dpone's own Pipes session (dpone launched by Pipes) is not handed to its command."""
    script = _script(
        ws,
        "probe.py",
        """\
        import os
        print("pipes context:", "DAGSTER_PIPES_CONTEXT" in os.environ, flush=True)
        from dagster_pipes import open_dagster_pipes
        with open_dagster_pipes() as pipes:
            pipes.report_asset_materialization(metadata={"rows_written": 42})
        """,
    )
    manifest = ws.write_manifest({"probe": {"kind": "command", "command": script}})

    @dg.asset
    def probe(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient) -> Any:
        argv = [*ws.argv("orchestrate", "run", "--manifest", str(manifest)), "--format", "json"]
        argv += ["--lock-dir", str(ws.lock_dir), "--state-dir", str(ws.state_dir)]
        return pipes.run(command=argv, context=context, cwd=str(ws.root)).get_results()

    result = dg.materialize(
        [probe], resources={"pipes": dg.PipesSubprocessClient()}, raise_on_error=False
    )
    assert result.success
    (md,) = materializations(result)["probe"]
    assert md["dpone/status"] == "committed"  # dpone's own report, over its own session
    assert "rows_written" not in md  # the command had no session to write into
    report = json.loads(Path(md["dpone/invocation_report_json"]).read_text())
    assert "pipes context: False" in report["run_result"]["result"]["stdout_tail"]


def test_the_docs_example_runs_as_written(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/dagster-pipes.md: its command script and its check declaration, verbatim."""
    doc = (REPO / "docs" / "dagster-pipes.md").read_text()
    script, declaration = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    (ws.root / "manifests").mkdir()
    (ws.root / "manifests" / "report_rows.py").write_text(script)
    command = [PYTHON, "report_rows.py"]  # the docs' `python`, as this interpreter
    ws.write_manifest(
        {"report_rows": {"kind": "command", "command": command}}, name="manifests/reports.yml"
    )
    monkeypatch.chdir(ws.root)
    namespace: dict[str, Any] = {}
    exec(compile(declaration, "docs/dagster-pipes.md", "exec"), namespace)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [namespace["reports"]], resources={"dpone": resource(ws)}, instance=instance
    )
    assert result.success
    (md,) = materializations(result)["command/reports/report_rows"]
    assert md["rows_written"] == 42 and md["dpone/status"] == "committed"
    (evaluation,) = check_evaluations(result)["command/reports/report_rows"]
    assert evaluation.check_name == "rows_positive" and evaluation.passed
    assert "wrote 42 rows" in _messages(instance, result.run_id)
