"""Materializing dpone assets with real Dagster over real manifests (command processes).

Every test runs ``dagster.materialize`` (or ``execute_job``) for real; the engine
runs the commands as real subprocesses and writes real job states and evidence.

No ``from __future__ import annotations`` here: Dagster reads the decorated
functions' annotations (``dg.AssetExecutionContext``, ``DponeResource``) as objects.
"""

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import (
    check_evaluations,
    command,
    materializations,
    observations,
    read_json,
    run,
    step_failure,
)

from dpone_core.blockers import ACTIONS
from dpone_dagster import (
    CHECK_NAME,
    METADATA_KEYS,
    DponeResource,
    build_dpone_assets,
    dpone_assets,
)
from dpone_dagster.failures import DAGSTER_HINTS
from tests.support.workspace import Workspace, recorder_command


def test_committed_metadata_value_by_value(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {"hello": {"kind": "command", "command": command("print('hello from dpone')")}},
        name="greet.yml",
    )
    result = run(build_dpone_assets([manifest]), ws)
    assert result.success
    (md,) = materializations(result)["command/greet/hello"]
    run_id = f"greet.hello_{result.run_id}"

    assert md["dpone/status"] == "committed"
    assert md["dpone/run_id"] == run_id
    assert md["dpone/attempt"] == 1
    assert [t["status"] for t in md["dpone/transitions"]] == ["started", "running", "committed"]
    assert md["dpone/blockers"] == []
    assert md["dpone/blocker_details"] == []
    assert md["dpone/lock_key"] == "greet.hello"  # no concurrency_key: the process key
    assert md["dpone/resume_policy"] == "fail"
    assert md["dpone/decision"]
    assert (md["dpone/extracted_rows"], md["dpone/inserted_rows"], md["dpone/updated_rows"]) == (
        0,
        0,
        0,
    )
    assert "dpone/final_rows" not in md and "dagster/row_count" not in md  # a command
    assert md["dpone/tries"] == 1
    assert md["dpone/exit_code"] == 0
    assert "dpone/errors" not in md and "dpone/load_id" not in md
    assert isinstance(md["dpone/duration_seconds"], float) and md["dpone/duration_seconds"] > 0
    assert md["dpone/reused"] is False
    assert "hello from dpone" in md["dpone/report"]
    assert f"`{run_id}`: PASSED" in md["dpone/report"]

    # The evidence paths are real files that say the same thing.
    report = read_json(md["dpone/report_json"])
    assert report["run_id"] == run_id and report["status"] == "committed"
    assert read_json(md["dpone/attempt_report_json"]) == report
    assert Path(md["dpone/report_md"]).read_text().startswith("# dpone orchestrated run")
    state = read_json(md["dpone/job_state_file"])
    assert state["status"] == "committed" and state["run_id"] == run_id
    safe = f"greet%2Ehello_{result.run_id}"  # file names are injective: '.' is encoded
    assert Path(md["dpone/job_state_file"]) == ws.state_dir / f"{safe}.job_state.json"
    assert Path(md["dpone/output_dir"]) == ws.root / ".dpone" / "orchestration" / safe

    assert set(md) <= set(METADATA_KEYS)  # every key is documented

    (check,) = check_evaluations(result)["command/greet/hello"]
    assert check.passed and check.check_name == CHECK_NAME


def test_sibling_failure_keeps_committed_and_carries_blockers(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            "first": {"kind": "command", "command": command("print(1)")},
            "broken": {"kind": "command", "command": command("import sys; sys.exit(3)")},
            "last": {"kind": "command", "command": command("print(3)")},
        },
        name="mix.yml",
    )
    result = run(build_dpone_assets([manifest]), ws)
    assert not result.success
    mats = materializations(result)
    # Both siblings committed and were reported, before and after the failing one.
    assert set(mats) == {"command/mix/first", "command/mix/last"}
    assert all(m[0]["dpone/status"] == "committed" for m in mats.values())

    description, md = step_failure(result)
    assert md["dpone/status"] == "failed"
    assert md["dpone/blockers"] == ["run.not_passed"]
    assert md["dpone/run_id"] == f"mix.broken_{result.run_id}"
    assert md["dpone/errors"] == ["command exited with code 3"]
    assert md["dpone/exit_code"] == 3
    assert md["dpone/failures"] == [
        {
            "asset_key": "command/mix/broken",
            "status": "failed",
            "run_id": f"mix.broken_{result.run_id}",
            "blockers": ["run.not_passed"],
        }
    ]
    assert set(md) <= set(METADATA_KEYS)
    assert "1 of 3 selected processes did not commit" in description
    assert ACTIONS["run.not_passed"] in description
    assert DAGSTER_HINTS["run.not_passed"] in description

    checks = check_evaluations(result)
    assert checks["command/mix/first"][0].passed and checks["command/mix/last"][0].passed
    assert not checks["command/mix/broken"][0].passed


def test_a_process_reading_a_failed_sibling_is_skipped(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            # 'report' reads 'load's target table, so it runs after it and depends on it.
            "report": {
                "source": {"connection": "db", "table": "landing"},
                "target": {"connection": "db", "table": "summary"},
            },
            "load": {
                "source": {"connection": "db", "table": "missing_source"},
                "target": {"connection": "db", "table": "landing"},
            },
        },
        name="chain.yml",
        connections={"db": "sqlite:///chain.db"},
    )
    (assets,) = build_dpone_assets([manifest], retry_policy=dg.RetryPolicy(max_retries=2))
    assert [s.key.to_user_string() for s in assets.specs] == ["db/landing", "db/summary"]
    result = run([assets], ws)
    assert not result.success
    description, md = step_failure(result)
    assert "db/summary (process 'report'): skipped because upstream db/landing did not commit" in (
        description
    )
    assert {f["asset_key"]: f["status"] for f in md["dpone/failures"]} == {
        "db/landing": "failed",
        "db/summary": "skipped",
    }
    # The missing source table is invalid input found against the database: the engine
    # recorded the attempt as failed, and the failure carries that attempt's metadata.
    assert md["dpone/run_id"] == f"chain.load_{result.run_id}"
    assert md["dpone/blockers"] == ["run.not_passed"]
    assert "'missing_source' does not exist" in md["dpone/blocker_details"][0]["message"]
    assert md["dpone/status"] == "failed" and md["dpone/attempt"] == 1
    # No Dagster retry can fix a missing table: the failure disables the RetryPolicy.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not ws.state_dir.joinpath(f"chain%2Ereport_{result.run_id}.job_state.json").exists()


def test_step_retry_skips_processes_that_already_committed(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            "once": {"kind": "command", "command": recorder_command("--record", "once.txt")},
            "flaky": {
                "kind": "command",
                "command": recorder_command(
                    "--record", "flaky.txt", "--fail-times", "1", "--counter", "flaky.count"
                ),
            },
        },
        name="retry.yml",
    )

    @dpone_assets(manifest=manifest, retry_policy=dg.RetryPolicy(max_retries=1))
    def retried(context: dg.AssetExecutionContext, dpone: DponeResource) -> Iterator[Any]:
        yield from dpone.materialize(context)

    result = run([retried], ws)
    assert result.success
    # 'once' ran once: the retry of the step found its job state committed.
    assert len(ws.records("once.txt")) == 1
    # 'flaky' ran twice under the same run id; the retry resumed it (job attempt 2).
    flaky_runs = ws.records("flaky.txt")
    assert [(r[0], r[1]) for r in flaky_runs] == [
        (f"retry.flaky_{result.run_id}", "1"),
        (f"retry.flaky_{result.run_id}", "2"),
    ]
    mats = materializations(result)
    # The retry loaded nothing for 'once': one materialization, and the reuse is observed.
    (once,) = mats["command/retry/once"]
    assert once["dpone/reused"] is False
    (reused,) = observations(result)["command/retry/once"]
    assert reused["dpone/reused"] is True and reused["dpone/run_id"] == once["dpone/run_id"]
    (flaky,) = mats["command/retry/flaky"]
    assert flaky["dpone/attempt"] == 2 and flaky["dpone/resume_policy"] == "resume"
    assert [t["status"] for t in flaky["dpone/transitions"]] == [
        "started",
        "running",
        "failed",
        "started",
        "running",
        "committed",
    ]


def test_reexecution_from_failure_reuses_the_root_run_ids(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new Dagster run re-executing a failed one shares its root run id, hence run ids."""
    manifest = ws.write_manifest(
        {
            "steady": {"kind": "command", "command": recorder_command("--record", "steady.txt")},
            "flaky": {
                "kind": "command",
                "command": recorder_command(
                    "--record", "flaky.txt", "--fail-times", "1", "--counter", "flaky.count"
                ),
            },
        },
        name="reexec.yml",
    )
    monkeypatch.setenv("DPONE_TEST_REEXEC_MANIFEST", str(manifest))
    monkeypatch.setenv("DPONE_TEST_REEXEC_ROOT", str(ws.root))
    import reexec_job

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        job = dg.reconstructable(reexec_job.asset_job)
        with dg.execute_job(job, instance=instance) as first:
            assert not first.success
            first_id = first.run_id
        options = dg.ReexecutionOptions.from_failure(first_id, instance)
        with dg.execute_job(job, instance=instance, reexecution_options=options) as second:
            assert second.success
            assert second.dagster_run.root_run_id == first_id
            mats = [
                e.step_materialization_data.materialization
                for e in second.get_asset_materialization_events()
            ]
            observed = [
                e.asset_observation_data.asset_observation
                for e in second.get_asset_observation_events()
            ]
    by_key = {m.asset_key.to_user_string(): m.metadata for m in mats}
    # 'steady' committed in the first run: re-executing it loads nothing, so it is observed
    # (dpone/reused), not materialized again with a new timestamp.
    assert "command/reexec/steady" not in by_key
    (steady,) = [
        o.metadata for o in observed if o.asset_key.to_user_string() == "command/reexec/steady"
    ]
    assert steady["dpone/reused"].value is True
    assert by_key["command/reexec/flaky"]["dpone/run_id"].value == f"reexec.flaky_{first_id}"
    assert by_key["command/reexec/flaky"]["dpone/attempt"].value == 2
    assert len(ws.records("steady.txt")) == 1
    assert [r[0] for r in ws.records("flaky.txt")] == [f"reexec.flaky_{first_id}"] * 2


def test_lock_held_by_another_scheduler_is_observed_not_failed(ws: Workspace) -> None:
    """Another scheduler is loading the table: nothing to fail, nothing new to record."""
    manifest = ws.write_manifest(
        {
            "holder": {
                "kind": "command",
                "concurrency_key": "shared_key",
                "command": recorder_command("--until", "release.flag"),
            },
            "contender": {
                "kind": "command",
                "concurrency_key": "shared_key",
                "command": command("print('should not run')"),
            },
        },
        name="locked.yml",
    )
    (assets,) = build_dpone_assets([manifest])
    # The CLI (standing in for cron or Airflow) holds the key in another process.
    holder = ws.popen(
        "orchestrate",
        "run",
        "--manifest",
        str(manifest),
        "--selector",
        "holder",
        "--run-id",
        "cron_holder",
        "--lock-dir",
        str(ws.lock_dir),
        "--state-dir",
        str(ws.state_dir),
    )
    try:
        record = ws.lock_dir / "shared_key.lock.json"
        deadline = time.monotonic() + 30
        while not (record.exists() and "cron_holder" in record.read_text()):
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline, "the CLI never took the lock"
            time.sleep(0.05)
        result = run([assets], ws, selection=["command/locked/contender"])
    finally:
        (ws.root / "release.flag").touch()
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert result.success  # no dagster.Failure, so no run retry either
    assert "command/locked/contender" not in materializations(result)
    (md,) = observations(result)["command/locked/contender"]
    assert md["dpone/status"] == "blocked"
    assert md["dpone/blockers"] == ["lock.concurrent_run"]
    assert md["dpone/lock_key"] == "shared_key"
    assert "cron_holder" in md["dpone/blocker_details"][0]["message"]
    assert "dpone/attempt" not in md  # refused before admission: no job state of its own
    # The check does not fail a healthy asset for a run that never started: with no
    # materialization of its own yet, it says so.
    (evaluation,) = check_evaluations(result)["command/locked/contender"]
    assert "no dpone materialization" in (evaluation.description or "")


def test_resource_orchestrate_in_a_custom_body(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {"only": {"kind": "command", "command": command("print('custom')")}}, name="custom.yml"
    )
    seen: list[str] = []

    @dpone_assets(manifest=manifest, checks=False)
    def custom(context: dg.AssetExecutionContext, dpone: DponeResource) -> dg.MaterializeResult:
        report = dpone.orchestrate(context)
        seen.append(report.status)
        return dg.MaterializeResult(
            asset_key=context.assets_def.key, metadata={"dpone/status": report.status}
        )

    result = run([custom], ws)
    assert result.success and seen == ["committed"]
    assert materializations(result)["command/custom/only"][0]["dpone/status"] == "committed"


def test_progress_lines_reach_the_dagster_log(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {"talk": {"kind": "command", "command": command("print('x')")}}, name="talk.yml"
    )
    instance = dg.DagsterInstance.ephemeral()
    result = run(build_dpone_assets([manifest]), ws, instance=instance)
    messages = [
        entry.user_message for entry in instance.all_logs(result.run_id) if entry.user_message
    ]
    started = f"talk: run talk.talk_{result.run_id} try 1/1 started (command)"
    assert any(started in m for m in messages)
    assert any("command/talk/talk (process 'talk'): committed" in m for m in messages)


def test_import_dpone_core_leaves_dagster_out() -> None:
    code = (
        "import sys, dpone_core, dpone_core.run, dpone_core.manifest, dpone_core.executor, "
        "dpone_core.cli; print('dagster' in sys.modules)"
    )
    out = subprocess.run(
        [os.environ.get("PYTHON", __import__("sys").executable), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_a_manifest_changed_since_loading_is_warned_about(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {"edit": {"kind": "command", "command": command("print('x')")}}, name="edited.yml"
    )
    assets = build_dpone_assets([manifest])
    manifest.write_text(manifest.read_text() + "# edited after the code location loaded\n")
    instance = dg.DagsterInstance.ephemeral()
    result = run(assets, ws, instance=instance)
    assert result.success
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]
    assert any("changed since the code location loaded it" in w for w in warnings), warnings
