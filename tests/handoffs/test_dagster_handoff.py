"""The Dagster handoff, loaded and materialized by the real ``dagster`` CLI from elsewhere.

The definitions file is taken as dpone wrote it into the report and used from
another directory: ``dagster definitions validate`` loads it, ``dagster asset
materialize`` runs two partitions (two logical dates, two run ids, both
committed, with dpone's outcome on the materialization through Dagster Pipes,
each job state naming Dagster and the Dagster run that ran it), and stopping a
run (SIGTERM to the Dagster process only) reaches dpone, which records the
attempt as ``failed``, never leaving it ``running``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from tests.support.workspace import Workspace, recorder_command

from .conftest import who

pytestmark = pytest.mark.slow

DAGSTER = str(Path(sys.executable).parent / "dagster")


def _days(*offsets: int) -> list[str]:
    """UTC dates relative to today: the partitions end today (end_offset=1)."""
    today = datetime.now(UTC).date()
    return [(today + timedelta(days=offset)).isoformat() for offset in offsets]


@pytest.fixture
def project(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "project")
    ws.root.mkdir()
    record = str(ws.root / "record.txt")
    until = str(ws.root / "never")
    ws.write_manifest(
        {
            "orders": {"kind": "command", "command": recorder_command("--record", record)},
            "slow": {
                "kind": "command",
                "command": recorder_command("--record", record, "--until", until),
            },
        },
        name="shop.yml",
    )
    return ws


def _snippet(ws: Workspace, selector: str, first_day: str, tmp_path: Path) -> Path:
    code, report, err = ws.orchestrate(
        "--manifest", "shop.yml", "--selector", selector, "--execution-date", first_day
    )
    assert code == 0 or selector == "slow", err
    path = tmp_path / f"handoff_{selector}.py"
    path.write_text(report["scheduler_handoff"]["dagster_asset"])
    return path


def _dagster(args: list[str], elsewhere: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.Popen(
        [DAGSTER, *args],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "dagster-home"
    elsewhere.mkdir()
    home.mkdir()
    return elsewhere, home


def test_definitions_load_and_two_partitions_commit_with_metadata(
    project: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, day1, day2 = _days(-3, -2, -1)
    snippet = _snippet(project, "orders", first, tmp_path)
    elsewhere, home = _dirs(tmp_path)

    validate = _dagster(["definitions", "validate", "-f", str(snippet)], elsewhere, home)
    out, _ = validate.communicate(timeout=300)
    assert validate.returncode == 0, out[-3000:]

    for day in (day1, day2):
        args = ["asset", "materialize", "-f", str(snippet), "--select", "shop/orders"]
        run = _dagster([*args, "--partition", day], elsewhere, home)
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out[-4000:]

    run_ids = [f"shop.orders_{d.replace('-', '_')}" for d in (first, day1, day2)]
    assert [line[0] for line in project.records(str(project.root / "record.txt"))] == run_ids
    states = [project.state(run_id) for run_id in run_ids]
    assert [s["status"] for s in states] == ["committed"] * 3
    assert {s["lock_key"] for s in states[1:]} == {"shop.orders"}

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(dg.AssetKey(["shop", "orders"]), limit=10)
        by_partition = {
            r.partition_key: (r.run_id, r.asset_materialization.metadata)
            for r in records.records
            if r.asset_materialization is not None
        }
        dagster_runs = {run.run_id for run in instance.get_runs()}
    assert sorted(by_partition) == [day1, day2]
    assert len(dagster_runs) == 2
    assert states[0]["scheduler"] == who("cli")  # the first run, from the command line
    for day, run_id, state in zip((day1, day2), run_ids[1:], states[1:], strict=True):
        dagster_run_id, metadata = by_partition[day]
        assert metadata["dpone/status"].value == "committed"
        assert metadata["dpone/run_id"].value == run_id
        assert metadata["dpone/lock_key"].value == "shop.orders"
        job_state = json.loads(Path(str(metadata["dpone/job_state_file"].value)).read_text())
        assert job_state["status"] == "committed"
        # Who ran it: Dagster, with the id of the Dagster run that materialized the partition.
        assert dagster_run_id in dagster_runs
        expected = who("dagster", run_id=dagster_run_id)
        assert job_state["scheduler"] == state["scheduler"] == expected


def test_stopping_the_dagster_run_leaves_the_state_failed(
    project: Workspace, tmp_path: Path
) -> None:
    first, today = _days(-1, 0)
    (project.root / "never").touch()  # the first run of `slow` must finish
    snippet = _snippet(project, "slow", first, tmp_path)
    (project.root / "never").unlink()
    elsewhere, home = _dirs(tmp_path)
    run_id = f"shop.slow_{today.replace('-', '_')}"

    args = ["asset", "materialize", "-f", str(snippet), "--select", "shop/slow"]
    run = _dagster([*args, "--partition", today], elsewhere, home)
    deadline = time.monotonic() + 120
    while not _running(project, run_id):
        assert run.poll() is None, run.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)

    os.kill(run.pid, signal.SIGTERM)  # the Dagster process only, as a run launcher would
    out, _ = run.communicate(timeout=120)
    assert run.returncode != 0
    state = project.state(run_id)
    assert state["status"] == "failed", out[-4000:]
    # Pipes forwards the stop as SIGINT; dpone stopped the command and recorded why.
    assert "TerminationSignal" in state["transitions"][-1]["reason"]
    assert not _holder_alive(state)
    # The failed attempt names the Dagster run that was stopped.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (dagster_run,) = instance.get_runs()
    assert state["scheduler"] == who("dagster", run_id=dagster_run.run_id)


def _running(ws: Workspace, run_id: str) -> bool:
    try:
        return bool(ws.state(run_id)["status"] == "running")
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def _holder_alive(state: dict[str, object]) -> bool:
    holder = state.get("holder")
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sub_daily_schedule_gives_minute_partitions(project: Workspace, tmp_path: Path) -> None:
    code, report, err = project.orchestrate(
        "--manifest", "shop.yml", "--selector", "orders", "--schedule", "0 * * * *"
    )
    assert code == 0, err
    snippet = tmp_path / "hourly.py"
    snippet.write_text(report["scheduler_handoff"]["dagster_asset"])
    elsewhere, home = _dirs(tmp_path)
    validate = _dagster(["definitions", "validate", "-f", str(snippet)], elsewhere, home)
    out, _ = validate.communicate(timeout=300)
    assert validate.returncode == 0, out[-3000:]
    namespace: dict[str, object] = {}
    exec(compile(snippet.read_text(), str(snippet), "exec"), namespace)
    partitions = namespace["PARTITIONS"]
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    keys = partitions.get_partition_keys()
    assert keys[0].endswith("T00:00") and keys[1].endswith("T01:00")
