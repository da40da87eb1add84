"""One live execution per run id whatever the contenders' keys and lock directories,
and default run ids that never collide across manifests (issue 9, items 3 and 5).

The races and the compare-and-set (items 1 and 6) run on both backends in
tests/contract/.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.workspace import Workspace, recorder_command


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_live_holder_under_another_lock_dir_is_never_taken_over(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    go = tmp_path / "go"
    manifest = ws.write_manifest(
        {
            "orders": {
                "kind": "command",
                "command": recorder_command("--record", "record.txt", "--until", str(go)),
            }
        }
    )
    common = ("--manifest", str(manifest), "--run-id", "r1", "--state-dir", "state")
    first = ws.popen("orchestrate", "run", "--format", "json", *common, "--lock-dir", "locks-a")
    try:
        deadline = time.monotonic() + 30
        while not ws.records():
            assert time.monotonic() < deadline and first.poll() is None, "first never started"
            time.sleep(0.02)
        for policy in ("fail", "resume", "restart"):
            code, report, _ = ws.orchestrate(
                *common, "--lock-dir", "locks-b", "--resume-policy", policy
            )
            assert code == 1, report
            assert report["status"] == "blocked"
            assert report["blockers"] == ["job_state.already_running"], report["blocker_details"]
            assert "alive" in report["blocker_details"][0]["message"]
        go.touch()
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert len(ws.records()) == 1  # executed once
    state = ws.state_at(tmp_path / "state", "r1")
    assert [t["status"] for t in state["transitions"]] == ["started", "running", "committed"]


def test_default_run_ids_of_two_manifests_with_one_process_name_differ(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    process = {"orders": {"kind": "command", "command": recorder_command("--record", "r.txt")}}
    first = ws.write_manifest(process, name="shop.yml")
    second = ws.write_manifest(process, name="crm.yml")
    codes = []
    for manifest in (first, second):
        code, report, _ = ws.orchestrate("--manifest", str(manifest))
        codes.append(code)
        assert report["run_id"].startswith(f"{manifest.stem}.orders_"), report["run_id"]
    assert codes == [0, 0]
    assert len(ws.records("r.txt")) == 2
