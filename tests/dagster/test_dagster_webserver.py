"""End to end: the real ``dagster dev`` (webserver + daemon) over a temporary workspace.

The test launches a materialization and a three-partition backfill through the
webserver's GraphQL API, waits for them, and reads the materializations'
``dpone/`` metadata back through GraphQL: what a user sees in the UI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webserver_support import (
    RUN_TIMEOUT,
    Server,
    launch,
    launch_backfill,
    materializations,
    pid_alive,
    run_status,
    start_server,
)

_DEFINITIONS = """\
import dagster as dg
from dpone_dagster import DponeResource, build_dpone_assets

defs = dg.Definitions(
    assets=build_dpone_assets(["manifests"]),
    resources={"dpone": DponeResource(
        lock_dir=".dpone/locks",
        state_dir=".dpone/orchestration-state",
        output_root=".dpone/orchestration",
    )},
)
"""

# Writes its pid, then sleeps: the run is terminated while it runs.
_SLEEPER = "import os, time; open('sleeper.pid', 'w').write(str(os.getpid())); time.sleep(120)"

_MANIFEST = f"""\
version: 1
processes:
  hello:
    kind: command
    command: [{sys.executable!r}, "-c", "print('hello from the webserver test')"]
  parted:
    kind: command
    command: [{sys.executable!r}, "-c", "import os; print(os.environ['DPONE_PARTITION_START'])"]
    partitions: {{granularity: daily, start: 2026-01-01}}
  sleeper:
    kind: command
    concurrency_key: sleeper_key
    command: [{sys.executable!r}, "-c", "{_SLEEPER}"]
"""

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``dagster dev`` for the module's tests (start-up costs several seconds)."""
    srv = start_server(
        tmp_path_factory.mktemp("dagster_e2e"), _DEFINITIONS, {"e2e.yml": _MANIFEST}
    )
    try:
        yield srv
    finally:
        srv.stop()


# Runs first: the backfill daemon wakes every 30 s after start-up, so the backfill test
# below waits for that tick anyway.
def test_terminating_a_run_records_the_attempt_and_frees_the_key(server: Server) -> None:
    run_id = launch(server, ["command", "e2e", "sleeper"])
    pid_file = server.root / "manifests" / "sleeper.pid"
    server.wait_for("the command to start", pid_file.exists, RUN_TIMEOUT)
    pid = int(server.wait_for("its pid", lambda: pid_file.read_text().strip(), 10))
    data = server.graphql(
        """
        mutation Terminate($id: String!) {
          terminateRun(runId: $id) {
            __typename
            ... on TerminateRunFailure { message }
            ... on PythonError { message }
          }
        }
        """,
        {"id": run_id},
    )
    assert data["terminateRun"]["__typename"] == "TerminateRunSuccess", data
    status = server.wait_for("the run to end", lambda: run_status(server, run_id), RUN_TIMEOUT)
    assert status == "CANCELED", server.log_tail()

    # The command's process is gone, the attempt is recorded as failed with the reason,
    # and the concurrency key is free again.
    server.wait_for("the command to die", lambda: not pid_alive(pid), 30)
    state_dir = server.root / ".dpone" / "orchestration-state"
    state_file = state_dir / f"e2e%2Esleeper_{run_id}.job_state.json"
    state = json.loads(state_file.read_text())
    assert state["status"] == "failed"
    assert state["blockers"] == ["run.interrupted"]
    assert not (server.root / ".dpone" / "locks" / "sleeper_key.lock.json").exists()


def test_launch_through_graphql_and_read_dpone_status_back(server: Server) -> None:
    # The backfill daemon wakes every 30 s: submit the backfill first so that its wait
    # overlaps the single run below.
    keys = ["2026-01-02", "2026-01-03", "2026-01-04"]
    launch_backfill(server, ["command", "e2e", "parted"], keys)

    run_id = launch(server, ["command", "e2e", "hello"])
    status = server.wait_for("the run", lambda: run_status(server, run_id), RUN_TIMEOUT)
    assert status == "SUCCESS", server.log_tail()

    (mat,) = materializations(server, ["command", "e2e", "hello"])
    assert mat["runId"] == run_id
    md = mat["metadata"]
    assert md["dpone/status"] == "committed"
    assert md["dpone/run_id"] == f"e2e.hello_{run_id}"
    assert md["dpone/attempt"] == 1
    assert md["dpone/reused"] is False
    state = json.loads(Path(md["dpone/job_state_file"]).read_text())
    assert state["status"] == "committed" and state["run_id"] == f"e2e.hello_{run_id}"

    # The three-partition backfill: one run (and one run id) per partition.
    def backfilled() -> list[dict[str, Any]] | None:
        mats = materializations(server, ["command", "e2e", "parted"], keys)
        return mats if len(mats) == 3 else None

    mats = server.wait_for("the backfill", backfilled, RUN_TIMEOUT)
    by_partition = {m["partition"]: m["metadata"] for m in mats}
    assert set(by_partition) == set(keys)
    for key, md in by_partition.items():
        assert md["dpone/status"] == "committed"
        assert md["dpone/run_id"] == f"e2e.parted_{key.replace('-', '_')}"
        assert md["dpone/window_start"] == f"{key}T00:00:00+00:00"
    assert len({m["runId"] for m in mats}) == 3
