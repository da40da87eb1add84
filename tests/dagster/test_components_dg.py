"""The dpone component through the real ``dg`` CLI, as a user drives it.

Each test copies ``examples/dg_project`` (with ``manifests/`` and the shop's
scripts) into a temporary directory and runs ``dg`` there as a subprocess:
``dg list components``, ``dg check defs`` on the example and on broken
``defs.yaml`` files, ``dg scaffold defs``, and ``dg dev`` serving the example and
materializing an asset through its GraphQL API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from components_support import (
    DG,
    EXAMPLE_DEFS,
    TYPE,
    copy_example,
    dg_env,
    loaded_project,
    run_dg,
    seed_shop,
)
from dagster_support import materializations

from dpone_dagster import build_dpone_assets


def _keys(assets: list[dg.AssetsDefinition]) -> set[str]:
    return {key.to_user_string() for a in assets for key in a.keys}


def _listed_keys(project: Path) -> set[str]:
    listed = run_dg(project, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # Sources (shop/orders, ...) are listed too, as non-executable assets.
    assets = json.loads(listed.stdout)["assets"]
    return {asset["asset_key"] for asset in assets if asset["is_executable"]}


def test_dg_list_components_lists_the_dpone_component(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    proc = run_dg(project, "list", "components", "--json")
    assert proc.returncode == 0, proc.stderr
    items = {item["key"]: item for item in json.loads(proc.stdout)["items"]}
    assert TYPE in items
    assert "dpone manifests as a Dagster asset" in items[TYPE]["summary"]


def test_dg_check_defs_passes_on_the_example_with_build_dpone_assets_keys(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    proc = run_dg(project, "check", "defs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All component YAML validated successfully." in proc.stdout
    assert "All definitions loaded successfully." in proc.stdout
    assert _listed_keys(project) == _keys(build_dpone_assets([tmp_path / "manifests"]))


#: (what to change in the example's defs.yaml, what `dg check defs` must say)
BROKEN = {
    "typo_in_a_section": (
        ("    lock_dir:", "    lock_dirr:"),
        ["attributes.resource.lock_dirr", "'lock_dirr' was unexpected"],
    ),
    "typo_at_the_top": (
        ("  manifests:", "  manifest:"),
        ["'manifest' was unexpected"],
    ),
    "a_value_outside_the_enum": (
        ("    retry_attempts: 1", "    retry_attempts: 1\n    resume_policy: restartt"),
        ["attributes.resource.resume_policy", "'restartt' is not valid"],
    ),
    "a_negative_number": (
        ("    retry_attempts: 1", "    retry_attempts: -1"),
        ["attributes.resource.retry_attempts", "-1 is not valid"],
    ),
    "an_unknown_placeholder": (
        ("  resource:", "  translation:\n    group_name: '{team}_assets'\n  resource:"),
        ["group_name", "unknown placeholder {team}"],
    ),
    "a_missing_manifest": (
        ('    - "{{ context.project_root }}/../../manifests"', "    - nowhere.yml"),
        ["manifests[0] 'nowhere.yml' does not exist"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_dg_check_defs_names_the_broken_field(tmp_path: Path, case: str) -> None:
    (old, new), expected = BROKEN[case]
    project = copy_example(tmp_path)
    defs_yaml = tmp_path / EXAMPLE_DEFS
    text = defs_yaml.read_text()
    assert old in text
    defs_yaml.write_text(text.replace(old, new, 1))
    proc = run_dg(project, "check", "defs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for fragment in expected:
        assert fragment in out, out


def test_dg_scaffold_defs_writes_defs_that_load_and_run(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    (tmp_path / EXAMPLE_DEFS).unlink()
    (tmp_path / EXAMPLE_DEFS).parent.rmdir()
    defs_dir = project / "dpone_example" / "defs"

    starter = run_dg(project, "scaffold", "defs", TYPE, "starter")
    assert starter.returncode == 0, starter.stdout + starter.stderr
    assert (defs_dir / "starter" / "starter.yml").exists()
    shop_manifest = "../../manifests/shop.yml"  # relative to where dg runs
    shop = run_dg(project, "scaffold", "defs", TYPE, "shop", "--manifest", shop_manifest)
    assert shop.returncode == 0, shop.stdout + shop.stderr
    assert "../../../../../manifests/shop.yml" in (defs_dir / "shop" / "defs.yaml").read_text()
    reporting = run_dg(
        project, "scaffold", "defs", TYPE, "reporting", "--format", "python",
        "--json-params", json.dumps({"manifests": ["../../manifests/reporting.yml"]}),
    )  # fmt: skip
    assert reporting.returncode == 0, reporting.stdout + reporting.stderr
    assert (defs_dir / "reporting" / "component.py").exists()

    check = run_dg(project, "check", "defs")
    assert check.returncode == 0, check.stdout + check.stderr
    manifests = [
        defs_dir / "starter" / "starter.yml",
        tmp_path / "manifests" / "shop.yml",
        tmp_path / "manifests" / "reporting.yml",
    ]
    assert _listed_keys(project) == _keys(build_dpone_assets(manifests))

    # The three components share the resource key "dpone" (equal default settings), and
    # the starter manifest runs as written.
    with loaded_project(project) as defs:
        assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        resources = dict(defs.resources or {})
    starter_keys = _keys(build_dpone_assets([manifests[0]]))
    result = dg.materialize(
        assets,
        resources=resources,
        selection=sorted(starter_keys),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    (md,) = materializations(result)[next(iter(starter_keys))]
    assert md["dpone/status"] == "committed"
    assert (project / ".dpone" / "orchestration-state").is_dir()  # the default: project root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    data: dict[str, Any] = payload["data"]
    return data


_LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {"
_LOCATION += " __typename ... on PythonError { message } } } } } }"
_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
_RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def _wait(what: str, probe: Any, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + 180
    last: Any = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dg dev exited:\n{log.read_text()[-6000:]}"
        try:
            last = probe()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})\n{log.read_text()[-6000:]}")


def _loaded(url: str) -> str | None:
    entries = _graphql(url, _LOCATION)["workspaceOrError"].get("locationEntries", [])
    for entry in entries:
        loaded = entry["locationOrLoadError"] or {}
        assert loaded.get("__typename") != "PythonError", loaded.get("message")
        if loaded.get("__typename") == "RepositoryLocation":
            return str(entry["name"])
    return None


def test_dg_dev_serves_the_example_and_materializes_an_asset(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    seed_shop(tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    log = tmp_path / "dg_dev.log"
    env = dg_env(tmp_path)
    # Dequeue runs every second (default 5 s) to keep the test short.
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n"
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [DG, "dev", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the code server and daemon stop with it
        )
        try:
            location = _wait("the code location", lambda: _loaded(url), proc, log)
            params = {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["warehouse", "landing_orders"]}],
                    "assetCheckSelection": [],
                },
                "mode": "default",
                "executionMetadata": {"tags": []},
            }
            launched = _graphql(url, _LAUNCH, {"params": params})["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]

            def finished() -> str | None:
                status = _graphql(url, _RUN, {"id": run_id})["runOrError"]["status"]
                return str(status) if status in ("SUCCESS", "FAILURE", "CANCELED") else None

            assert _wait("the run", finished, proc, log) == "SUCCESS", log.read_text()[-6000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
    state_dir = tmp_path / ".dpone" / "orchestration-state"
    states = list(state_dir.glob("shop%2Eorders_*.job_state.json"))  # shop.orders_<run>
    assert [json.loads(s.read_text())["status"] for s in states] == ["committed"]
