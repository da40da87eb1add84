"""Partitioned processes: Dagster partitions, deterministic run ids, windows, re-runs."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pytest
from dagster_support import check_evaluations, materializations, observations, run, step_failure

from dpone_dagster import RESUME_POLICY_TAG, build_dpone_assets
from dpone_dagster.partitions import partitioned_run_id
from tests.support.workspace import Workspace, recorder_command

_WRITE_WINDOW = (
    "import json, os\n"
    "with open('windows.jsonl', 'a') as fh:\n"
    "    fh.write(json.dumps({k: os.environ.get(k) for k in ("
    "'DPONE_RUN_ID', 'DPONE_PARTITION_START', 'DPONE_PARTITION_END', 'DPONE_PARTITION_KEY', "
    "'DAGSTER_RUN_ID'"
    ")}) + '\\n')\n"
)


def _manifest(ws: Workspace, granularity: str = "daily", start: str = "2026-01-01") -> Any:
    return ws.write_manifest(
        {
            "daily_job": {
                "kind": "command",
                "command": ["python3", "-c", _WRITE_WINDOW],
                "partitions": {"granularity": granularity, "start": start},
            }
        },
        name="parts.yml",
    )


def _windows(ws: Workspace) -> list[dict[str, str]]:
    path = ws.root / "windows.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_partitions_definition_and_backfill_policy(ws: Workspace) -> None:
    (assets,) = build_dpone_assets([_manifest(ws)])
    partitions_def = assets.partitions_def
    assert isinstance(partitions_def, dg.DailyPartitionsDefinition)
    assert partitions_def.get_first_partition_key() == "2026-01-01"
    assert partitions_def.timezone == "UTC"
    # One run per partition: each partition is its own logical run.
    assert assets.backfill_policy == dg.BackfillPolicy.multi_run(1)

    hourly = build_dpone_assets([_manifest(ws, "hourly", "2026-01-01T05:00:00")])[0]
    assert isinstance(hourly.partitions_def, dg.HourlyPartitionsDefinition)
    assert hourly.partitions_def.get_first_partition_key() == "2026-01-01-05:00"


def test_three_partition_backfill_runs_each_partition_with_its_window(ws: Workspace) -> None:
    assets = build_dpone_assets([_manifest(ws)])
    instance = dg.DagsterInstance.ephemeral()
    keys = ["2026-01-02", "2026-01-03", "2026-01-04"]
    dagster_runs = []
    for key in keys:  # what a multi-run backfill launches: one run per partition
        result = run(assets, ws, instance=instance, partition_key=key)
        dagster_runs.append(result.run_id)
        assert result.success, key
        (md,) = materializations(result)["command/parts/daily_job"]
        assert md["dpone/run_id"] == f"parts.daily_job_{key.replace('-', '_')}"
        assert md["dpone/partition_key"] == key
        assert md["dpone/window_start"] == f"{key}T00:00:00+00:00"
        assert md["dpone/status"] == "committed"

    assert _windows(ws) == [
        {
            "DPONE_RUN_ID": f"parts.daily_job_{key.replace('-', '_')}",
            "DPONE_PARTITION_START": f"{key}T00:00:00+00:00",
            "DPONE_PARTITION_END": f"2026-01-0{int(key[-1]) + 1}T00:00:00+00:00",
            "DPONE_PARTITION_KEY": key,
            "DAGSTER_RUN_ID": dagster_run,
        }
        for key, dagster_run in zip(keys, dagster_runs, strict=True)
    ]
    materialized = instance.get_materialized_partitions(
        dg.AssetKey(["command", "parts", "daily_job"])
    )
    assert materialized == set(keys)
    for key in keys:
        state = ws.state(f"parts.daily_job_{key.replace('-', '_')}")
        assert state["status"] == "committed"


def test_rematerializing_a_committed_partition_is_blocked_unless_restart(ws: Workspace) -> None:
    assets = build_dpone_assets([_manifest(ws)])
    assert run(assets, ws, partition_key="2026-01-05").success

    # A re-run of a committed partition is refused: not a failure (the partition stays
    # materialized, no run retry) and not a new materialization; it is observed.
    again = run(assets, ws, partition_key="2026-01-05")
    assert again.success
    assert "command/parts/daily_job" not in materializations(again)
    (md,) = observations(again)["command/parts/daily_job"]
    assert md["dpone/status"] == "blocked"
    assert md["dpone/blockers"] == ["job_state.already_committed"]
    assert md["dpone/run_id"] == "parts.daily_job_2026_01_05"  # what the CLI names the day
    assert md["dpone/partition_key"] == "2026-01-05"
    observation = again.get_asset_observation_events()[0].asset_observation_data
    assert observation.asset_observation.partition == "2026-01-05"
    # The check verifies the targeted partition's committed run, and passes.
    (evaluation,) = check_evaluations(again)["command/parts/daily_job"]
    assert evaluation.passed
    assert len(_windows(ws)) == 1  # nothing ran again

    # The committed state is unchanged by the refusal.
    state = ws.state("parts.daily_job_2026_01_05")
    assert (state["status"], state["attempt"]) == ("committed", 1)

    # A run tag restarts it for one run; so does the resource's policy.
    tagged = run(assets, ws, partition_key="2026-01-05", tags={RESUME_POLICY_TAG: "restart"})
    assert tagged.success
    (md,) = materializations(tagged)["command/parts/daily_job"]
    assert (md["dpone/attempt"], md["dpone/resume_policy"]) == (2, "restart")
    configured = run(
        assets, ws, partition_key="2026-01-05", resource_overrides={"resume_policy": "restart"}
    )
    assert configured.success
    assert materializations(configured)["command/parts/daily_job"][0]["dpone/attempt"] == 3
    # So does the op's run config (the launchpad, `dagster asset materialize --config-json`),
    # without touching the resource's fields.
    (op_name,) = {a.op.name for a in assets}
    by_config = run(
        assets,
        ws,
        partition_key="2026-01-05",
        run_config={"ops": {op_name: {"config": {"resume_policy": "RESTART"}}}},
    )
    assert by_config.success
    (md,) = materializations(by_config)["command/parts/daily_job"]
    assert (md["dpone/attempt"], md["dpone/resume_policy"]) == (4, "restart")
    assert len(_windows(ws)) == 4


def test_step_retry_of_a_partition_resumes_its_own_attempt(ws: Workspace) -> None:
    """A retry of the same Dagster run resumes the partition (no resume_required), while a
    new Dagster run of that failed partition is refused under the default policy."""
    manifest = ws.write_manifest(
        {
            "flaky": {
                "kind": "command",
                "command": recorder_command(
                    "--record", "flaky.txt", "--fail-times", "1", "--counter", "flaky.count"
                ),
                "partitions": {"granularity": "daily", "start": "2026-01-01"},
            }
        },
        name="flakyparts.yml",
    )
    retried = build_dpone_assets([manifest], retry_policy=dg.RetryPolicy(max_retries=1))
    result = run(retried, ws, partition_key="2026-01-07")
    assert result.success
    assert [r[:2] for r in ws.records("flaky.txt")] == [
        ["flakyparts.flaky_2026_01_07", "1"],
        ["flakyparts.flaky_2026_01_07", "2"],
    ]
    (md,) = materializations(result)["command/flakyparts/flaky"]
    assert (md["dpone/attempt"], md["dpone/resume_policy"]) == (2, "resume")
    assert md["dpone/output_dir"].endswith(f"flakyparts%2Eflaky_2026_01_07/dagster-{result.run_id}")

    # Without a retry policy the first failure stands; a new Dagster run is not a retry.
    (ws.root / "flaky.count").unlink()
    plain_assets = build_dpone_assets([manifest])
    failed = run(plain_assets, ws, partition_key="2026-01-08")
    assert not failed.success
    again = run(plain_assets, ws, partition_key="2026-01-08")
    _, md = step_failure(again)
    assert md["dpone/blockers"] == ["job_state.resume_required"]


def test_invalid_policy_tag_fails_clearly(ws: Workspace) -> None:
    assets = build_dpone_assets([_manifest(ws)])
    result = run(assets, ws, partition_key="2026-01-06", tags={RESUME_POLICY_TAG: "sometimes"})
    assert not result.success
    description, _ = step_failure(result)
    assert "dpone/resume_policy='sometimes' is not a resume policy" in description


def test_hourly_partition_run_id_follows_the_rule(ws: Workspace) -> None:
    assets = build_dpone_assets([_manifest(ws, "hourly", "2026-01-01T00:00:00")])
    result = run(assets, ws, partition_key="2026-01-01-05:00")
    assert result.success
    (md,) = materializations(result)["command/parts/daily_job"]
    assert md["dpone/run_id"] == "parts.daily_job_2026_01_01T05_00"
    assert md["dpone/window_end"] == "2026-01-01T06:00:00+00:00"
    assert ws.state("parts.daily_job_2026_01_01T05_00")["status"] == "committed"


@pytest.mark.parametrize(
    ("window_start", "run_id"),
    [
        ("2026-01-01T00:00:00+00:00", "m.p_2026_01_01"),
        ("2026-01-01T05:00:00+00:00", "m.p_2026_01_01T05_00"),
    ],
)
def test_partition_run_ids_follow_the_run_id_rule(window_start: str, run_id: str) -> None:
    """The same token cron's date -u, Airflow's {{ ds }} and the CLI give (file safe too)."""
    assert partitioned_run_id("m.p", window_start) == run_id
