"""End to end: the real ``dagster dev`` (webserver + daemon) over a temporary workspace.

The test launches a materialization and a three-partition backfill through the
webserver's GraphQL API, waits for them, and reads the materializations'
``dpone/`` metadata back through GraphQL: what a user sees in the UI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DAGSTER = str(Path(sys.executable).with_name("dagster"))
LOCATION = "dpone_e2e"
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 120.0

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

_METADATA_FIELDS = """
  label
  __typename
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intValue }
  ... on BoolMetadataEntry { boolValue }
  ... on PathMetadataEntry { path }
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A running ``dagster dev`` and a GraphQL client for it."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.log_path = root / "dagster_dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DPONE_")}
        env.update(
            DAGSTER_HOME=str(root / "dagster_home"),
            DAGSTER_DISABLE_TELEMETRY="yes",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the code server and daemon die with it
        )

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited:\n{self.log_tail()}"
            try:
                last = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what} (last: {last!r})\n{self.log_tail()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``dagster dev`` for the module's tests (start-up costs several seconds)."""
    tmp_path = tmp_path_factory.mktemp("dagster_e2e")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "e2e.yml").write_text(_MANIFEST)
    (tmp_path / "definitions.py").write_text(_DEFINITIONS)
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n  - python_file:\n      relative_path: definitions.py\n"
        f"      location_name: {LOCATION}\n      working_directory: .\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Dequeue runs every second (default 5 s) to keep the test short.
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n"
    )
    srv = Server(tmp_path, _free_port())
    try:
        srv.wait_for("the code location", lambda: _location_loaded(srv), STARTUP_TIMEOUT)
        yield srv
    finally:
        srv.stop()


def _location_loaded(srv: Server) -> bool:
    data = srv.graphql(
        "{ workspaceOrError { __typename ... on Workspace { locationEntries { name "
        "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    for entry in data["workspaceOrError"].get("locationEntries", []):
        if entry["name"] == LOCATION:
            loaded = entry["locationOrLoadError"]
            if loaded and loaded["__typename"] == "PythonError":
                pytest.fail(f"the code location failed to load: {loaded['message']}")
            return bool(loaded and loaded["__typename"] == "RepositoryLocation")
    return False


def _launch(srv: Server, path: list[str]) -> str:
    data = srv.graphql(
        """
        mutation Launch($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on InvalidSubsetError { message }
            ... on RunConfigValidationInvalid { errors { message } }
          }
        }
        """,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": path}],
                },
                "runConfigData": {},
            }
        },
    )
    launched = data["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id: str = launched["run"]["runId"]
    return run_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _run_status(srv: Server, run_id: str) -> str | None:
    data = srv.graphql(
        "query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
        {"id": run_id},
    )
    status = data["runOrError"].get("status")
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


def _materializations(
    srv: Server, path: list[str], partitions: list[str] | None = None
) -> list[dict[str, Any]]:
    data = srv.graphql(
        f"""
        query Mats($key: AssetKeyInput!, $partitions: [String!]) {{
          assetOrError(assetKey: $key) {{
            __typename
            ... on Asset {{
              assetMaterializations(partitions: $partitions) {{
                runId
                partition
                metadataEntries {{ {_METADATA_FIELDS} }}
              }}
            }}
          }}
        }}
        """,
        {"key": {"path": path}, "partitions": partitions},
    )
    asset = data["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    out = []
    for mat in asset["assetMaterializations"]:
        entries = {}
        for entry in mat["metadataEntries"]:
            value = next(
                (entry[k] for k in ("text", "intValue", "boolValue", "path") if k in entry), None
            )
            entries[entry["label"]] = value
        out.append({"runId": mat["runId"], "partition": mat["partition"], "metadata": entries})
    return out


def _launch_backfill(srv: Server, path: list[str], keys: list[str]) -> str:
    data = srv.graphql(
        """
        mutation Backfill($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename
            ... on LaunchBackfillSuccess { backfillId }
            ... on PythonError { message }
          }
        }
        """,
        {"params": {"partitionNames": keys, "assetSelection": [{"path": path}]}},
    )
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id: str = launched["backfillId"]
    return backfill_id


# Runs first: the backfill daemon wakes every 30 s after start-up, so the backfill test
# below waits for that tick anyway.
def test_terminating_a_run_records_the_attempt_and_frees_the_key(server: Server) -> None:
    run_id = _launch(server, ["e2e", "sleeper"])
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
    status = server.wait_for("the run to end", lambda: _run_status(server, run_id), RUN_TIMEOUT)
    assert status == "CANCELED", server.log_tail()

    # The command's process is gone, the attempt is recorded as failed with the reason,
    # and the concurrency key is free again.
    server.wait_for("the command to die", lambda: not _pid_alive(pid), 30)
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
    _launch_backfill(server, ["e2e", "parted"], keys)

    run_id = _launch(server, ["e2e", "hello"])
    status = server.wait_for("the run", lambda: _run_status(server, run_id), RUN_TIMEOUT)
    assert status == "SUCCESS", server.log_tail()

    (mat,) = _materializations(server, ["e2e", "hello"])
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
        mats = _materializations(server, ["e2e", "parted"], keys)
        return mats if len(mats) == 3 else None

    mats = server.wait_for("the backfill", backfilled, RUN_TIMEOUT)
    by_partition = {m["partition"]: m["metadata"] for m in mats}
    assert set(by_partition) == set(keys)
    for key, md in by_partition.items():
        assert md["dpone/status"] == "committed"
        assert md["dpone/run_id"] == f"e2e.parted_{key.replace('-', '_')}"
        assert md["dpone/window_start"] == f"{key}T00:00:00+00:00"
    assert len({m["runId"] for m in mats}) == 3
