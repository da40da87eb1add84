"""A real ``dagster dev`` (webserver + daemon) in a temporary workspace, and a GraphQL client.

Shared by the webserver tests: what a user sees in the UI is what GraphQL returns.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAGSTER = str(Path(sys.executable).with_name("dagster"))
LOCATION = "dpone_e2e"
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 120.0

_METADATA_FIELDS = """
  label
  __typename
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intValue }
  ... on BoolMetadataEntry { boolValue }
  ... on PathMetadataEntry { path }
"""


def free_port() -> int:
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




def start_server(root: Path, definitions: str, manifests: dict[str, str]) -> Server:
    """Write the workspace (definitions.py, manifests/) and start ``dagster dev`` on it."""
    (root / "manifests").mkdir()
    for name, text in manifests.items():
        (root / "manifests" / name).write_text(text)
    (root / "definitions.py").write_text(definitions)
    (root / "workspace.yaml").write_text(
        "load_from:\n  - python_file:\n      relative_path: definitions.py\n"
        f"      location_name: {LOCATION}\n      working_directory: .\n"
    )
    home = root / "dagster_home"
    home.mkdir()
    # Dequeue runs every second (default 5 s) to keep the tests short; no first-visit
    # "join the community" dialog over the pages the UI tests screenshot.
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n"
        "nux:\n  enabled: false\n"
    )
    srv = Server(root, free_port())
    try:
        srv.wait_for("the code location", lambda: location_loaded(srv), STARTUP_TIMEOUT)
    except BaseException:
        srv.stop()
        raise
    return srv


def location_loaded(srv: Server) -> bool:
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


def launch(srv: Server, path: list[str], partition: str | None = None) -> str:
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
                "executionMetadata": {
                    "tags": [{"key": "dagster/partition", "value": partition}] if partition else []
                },
            }
        },
    )
    launched = data["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id: str = launched["run"]["runId"]
    return run_id


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_status(srv: Server, run_id: str) -> str | None:
    data = srv.graphql(
        "query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
        {"id": run_id},
    )
    status = data["runOrError"].get("status")
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


def materializations(
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


def launch_backfill(srv: Server, path: list[str], keys: list[str]) -> str:
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


CHROMIUM = "/usr/bin/chromium"


def _chromium(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Headless Chromium as the machine allows it: no sandbox (root), no network chatter."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        "--hide-scrollbars",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def screenshot(url: str, out: Path, profile: Path, *, budget_ms: int = 25000) -> str:
    """A PNG of the page once its scripts ran (virtual time), and the page's text."""
    shot = _chromium(
        [f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url], profile, 180
    )
    assert out.is_file(), shot.stderr[-2000:]
    dom = _chromium([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], profile, 180)
    return dom.stdout
