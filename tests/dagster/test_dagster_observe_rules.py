"""The observation sensor's three rules, one by one, on real asset specs.

Which asset a job state belongs to, which partition its run id names, and
whether this Dagster instance made it (see dpone_dagster/observed_runs.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dpone_core.job_state import SchedulerIdentity
from dpone_core.naming import file_safe_name
from dpone_core.state import AttemptHolder, JobState, admit_attempt
from dpone_dagster import build_dpone_assets
from dpone_dagster.observed_runs import (
    AssetIndex,
    ObservedAsset,
    dagster_root_run_id,
    made_here,
    partition_of,
)
from tests.support.workspace import Workspace

DAGSTER_RUN = "0b7e3c4a-1f2d-4e5f-8a9b-0c1d2e3f4a5b"


def _state(
    run_id: str, manifest_path: str, process: str = "job", output_dir: str = "out"
) -> JobState:
    return admit_attempt(
        None,
        run_id=run_id,
        process=process,
        manifest_path=manifest_path,
        selector=process,
        lock_key=run_id,
        output_dir=output_dir,
        holder=AttemptHolder(pid=1, host="h"),
        from_scratch=False,
    )


def _asset(ws: Workspace, partitions: dict[str, str] | None, name: str = "m.yml") -> ObservedAsset:
    process: dict[str, object] = {"kind": "command", "command": ["true"]}
    if partitions is not None:
        process["partitions"] = partitions
    manifest = ws.write_manifest({"job": process}, name=name)
    [asset] = AssetIndex(build_dpone_assets([manifest])).by_path.values()
    return asset


@pytest.mark.parametrize(
    ("run_id", "key"),
    [
        ("m.job_2026_11_02", "2026-11-02"),  # the run-id rule's logical date
        ("job_2026-11-02", "2026-11-02"),  # a Dagster partition's run id
        ("nightly_2026_11_30", "2026-11-30"),  # any run id ending with a logical date
        ("m.job_2026_11_02T02_00", None),  # starts no daily partition
        ("m.job_2026_10_31", None),  # before the first partition
        ("m.job_2026_12_01", None),  # the end is exclusive
        ("by_hand", None),  # names no date
    ],
)
def test_daily_partitions(ws: Workspace, run_id: str, key: str | None) -> None:
    asset = _asset(ws, {"granularity": "daily", "start": "2026-11-01", "end": "2026-12-01"})
    window, why = partition_of(asset, run_id)
    assert (window.key if window else None) == key
    assert bool(why) == (key is None)
    if window is not None:
        assert window.start == f"{key}T00:00:00+00:00"


@pytest.mark.parametrize(
    ("run_id", "key"),
    [
        ("m.job_2026_11_02T05_00", "2026-11-02-05:00"),
        ("m.job_2026_11_02", "2026-11-02-00:00"),  # a date is its midnight
        ("job_2026-11-02-05_00", "2026-11-02-05:00"),
        ("m.job_2026_11_02T05_30", None),
        ("m.job_2026_11_02T05_00_30", None),
        ("m.job_2026_11_01", None),  # 00:00 is before the first partition (05:00)
    ],
)
def test_hourly_partitions(ws: Workspace, run_id: str, key: str | None) -> None:
    asset = _asset(ws, {"granularity": "hourly", "start": "2026-11-01T05:00:00"})
    window, _ = partition_of(asset, run_id)
    assert (window.key if window else None) == key


def test_todays_partition_is_mapped_before_dagster_lists_it(ws: Workspace) -> None:
    """cron's run of today (its logical date) is today's partition, which Dagster lists from
    tomorrow on; its materialization is recorded now and counts from then on."""
    asset = _asset(ws, {"granularity": "daily", "start": "2026-01-01"})
    today = datetime.now(UTC).date()
    window, why = partition_of(asset, f"m.job_{today:%Y_%m_%d}")
    assert window is not None and window.key == today.isoformat(), why


def test_unpartitioned_assets_take_any_run_id(ws: Workspace) -> None:
    window, why = partition_of(_asset(ws, None), "by_hand")
    assert (window, why) == (None, "")


def test_states_match_assets_by_path_then_by_manifest_identity(ws: Workspace) -> None:
    (ws.root / "a").mkdir()
    (ws.root / "b").mkdir()
    first = ws.write_manifest({"job": {"kind": "command", "command": ["true"]}}, name="a/m.yml")
    other = ws.write_manifest({"other": {"kind": "command", "command": ["true"]}}, name="n.yml")
    plain = dg.AssetSpec("not_dpone")  # other assets are left out
    index = AssetIndex([*build_dpone_assets([first, other]), plain])
    assert len(index) == 2

    by_path, _ = index.match(_state("r", str(first)))
    by_identity, _ = index.match(_state("r", "somewhere/else/m.yml"))
    assert by_path is not None and by_path == by_identity
    missing, why = index.match(_state("r", str(first), process="nope"))
    assert missing is None and "no asset" in why

    # A second manifest with the same identity (another directory, another code location):
    # a state names one of them only by its path.
    second = ws.write_manifest({"job": {"kind": "command", "command": ["true"]}}, name="b/m.yml")
    both = AssetIndex([*build_dpone_assets([first]), *build_dpone_assets([second])])
    ambiguous, why = both.match(_state("r", "m.yml"))
    assert ambiguous is None and "several" in why
    exact, _ = both.match(_state("r", str(Path(second))))
    assert exact is not None and exact.manifest_path == str(second.resolve())


def test_the_mark_of_a_dagster_step(ws: Workspace) -> None:
    asset = _asset(ws, None)
    root = ws.root / ".dpone" / "orchestration"
    unpartitioned = f"{asset.run_id_prefix}_{DAGSTER_RUN}"
    partition = f"{asset.run_id_prefix}_2026-11-02"
    unpartitioned_dir = root / file_safe_name(unpartitioned)
    partition_dir = root / file_safe_name(partition)
    marked = [
        (_state(unpartitioned, "m.yml", output_dir=str(unpartitioned_dir)), DAGSTER_RUN),
        (
            _state(partition, "m.yml", output_dir=f"{partition_dir}/dagster-{DAGSTER_RUN}"),
            DAGSTER_RUN,
        ),
        # The CLI's own layout, the run-id rule: no mark.
        (_state("m.job_2026_11_02", "m.yml", output_dir=str(root / "m%2Ejob_2026_11_02")), None),
        # A Dagster-looking run id whose evidence went elsewhere: not a Dagster step's.
        (_state(unpartitioned, "m.yml", output_dir="/elsewhere"), None),
        # A partition's evidence dir whose parent is another run id's.
        (_state(partition, "m.yml", output_dir=f"{root}/other/dagster-{DAGSTER_RUN}"), None),
    ]
    for state, expected in marked:
        assert dagster_root_run_id(state, asset) == expected, state.output_dir


def test_the_recorded_scheduler_says_who_made_an_attempt(ws: Workspace) -> None:
    asset = _asset(ws, None)
    instance = dg.DagsterInstance.ephemeral()
    here = dg.materialize([dg.asset(name="anything")(lambda: None)], instance=instance).run_id
    root = ws.root / ".dpone" / "orchestration"
    marked = f"{asset.run_id_prefix}_{here}"

    def state(scheduler: SchedulerIdentity | None, run_id: str = "m.job_2026_11_02") -> JobState:
        out = str(root / file_safe_name(run_id))
        return _state(run_id, "m.yml", output_dir=out).model_copy(update={"scheduler": scheduler})

    cases = [
        (state(SchedulerIdentity(kind="dagster", run_id=here)), True),  # a step, or Pipes
        (state(SchedulerIdentity(kind="dagster", run_id=DAGSTER_RUN)), False),  # elsewhere
        (state(SchedulerIdentity(kind="cli")), False),
        (state(SchedulerIdentity(kind="airflow", name="shop", run_id=here)), False),
        # The record wins over the mark: a CLI run resuming a Dagster run's run id by hand.
        (state(SchedulerIdentity(kind="cli"), run_id=marked), False),
        # No record (an older dpone): the mark, and the instance must hold its run.
        (state(None, run_id=marked), True),
        (state(None, run_id=f"{asset.run_id_prefix}_{DAGSTER_RUN}"), False),
        (state(None), False),
        (state(SchedulerIdentity(kind="dagster"), run_id=marked), True),
    ]
    for job_state, expected in cases:
        assert made_here(instance, job_state, asset) is expected, (
            job_state.scheduler,
            job_state.run_id,
        )
