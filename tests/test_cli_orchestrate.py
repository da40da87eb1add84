"""`dpone orchestrate run` end to end: real CLI processes, real files, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import Workspace, all_text_under, recorder_command


def _manifest(ws: Workspace, *args: str, name: str = "m.yml", **extra: object) -> Path:
    return ws.write_manifest(
        {
            "job": {
                "kind": "command",
                "command": recorder_command("--record", "record.txt", *args),
                **extra,
            }
        },
        name=name,
    )


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# -- holders and lock records -------------------------------------------------------------
# The resume-policy table and the many-racer races run on both backends in tests/contract/.


def _start_holder(
    ws: Workspace, run_id: str, *extra: str, sleep: float = 30
) -> subprocess.Popen[str]:
    _manifest(ws, "--sleep", str(sleep), "--heartbeat", "heartbeat.txt")
    proc = ws.popen(
        "orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", run_id, *extra
    )
    _wait_for(lambda: (ws.root / "heartbeat.txt").exists())
    return proc


def test_corrupt_lock_record_fails_closed_untouched(ws: Workspace) -> None:
    from dpone_core.naming import file_safe_name

    _manifest(ws)
    ws.lock_dir.mkdir(parents=True)
    record = ws.lock_dir / f"{file_safe_name('r1')}.lock.json"
    record.write_bytes(b"\x00garbage")
    code, report, _ = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1 and report["blockers"] == ["lock.corrupt"]
    assert record.read_bytes() == b"\x00garbage"
    assert ws.records() == []
    assert not (ws.state_dir / "r1.job_state.json").exists()


# -- concurrency ------------------------------------------------------------------------


def test_live_holder_keeps_key_past_ttl(ws: Workspace) -> None:
    _manifest(ws, "--sleep", "0.2", "--heartbeat", "heartbeat.txt", "--until", "release")
    holder = ws.popen(
        "orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", "r1",
        "--lock-ttl-seconds", "1",
    )  # fmt: skip
    _wait_for(lambda: (ws.root / "heartbeat.txt").exists())
    time.sleep(1.8)  # past the TTL; the holder waits for "release", however slow the machine
    code, report, _ = ws.orchestrate(
        "--manifest",
        "m.yml",
        "--run-id",
        "r2",
        "--concurrency-key",
        "r1",
        "--lock-ttl-seconds",
        "1",
    )
    assert code == 1 and report["blockers"] == ["lock.concurrent_run"]
    (ws.root / "release").touch()
    out, _ = holder.communicate(timeout=60)
    assert holder.returncode == 0 and json.loads(out)["status"] == "committed"
    assert [r[0] for r in ws.records()] == ["r1"]


def test_decision_race_contender_paused_before_the_lock_does_not_execute(ws: Workspace) -> None:
    """A contender that saw "no state" and then waited for the lock must not run after a commit."""
    import threading

    from dpone_core.executor import RunManifestService
    from dpone_core.handoff import SchedulerHandoffBuilder
    from dpone_core.locks import LocalRunLockManager
    from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService
    from dpone_core.state import LocalJobStateStore

    _manifest(ws)
    store = LocalJobStateStore(ws.state_dir)
    paused, go = threading.Event(), threading.Event()

    class PausingLocks(LocalRunLockManager):
        def acquire(self, key: str, *, run_id: str):  # type: ignore[no-untyped-def]
            assert store.load(run_id) is None  # it looked: nothing there yet
            paused.set()
            go.wait(30)
            return super().acquire(key, run_id=run_id)

    service = OrchestratedRunService(
        lock_manager=PausingLocks(ws.lock_dir),
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=RunManifestService().execute,
        job_state_store=store,
    )
    reports = []
    thread = threading.Thread(
        target=lambda: reports.append(
            service.run(
                request=OrchestratedRunRequest(manifest_path=str(ws.root / "m.yml"), run_id="r1"),
                output_dir=ws.root / "out",
            )
        )
    )
    thread.start()
    assert paused.wait(10)
    code, _report, _ = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 0
    go.set()
    thread.join(30)
    assert reports[0].blockers == ["job_state.already_committed"]
    assert len(ws.records()) == 1


# -- keys, signals, retries ---------------------------------------------------------------


def test_keys_are_distinct_files_inside_the_lock_dir(ws: Workspace) -> None:
    _manifest(ws)
    keys = ["a/b", "a_b", "../x", "ключ-ü", "k" * 300]
    for i, key in enumerate(keys):
        code, report, err = ws.orchestrate(
            "--manifest", "m.yml", "--run-id", f"r{i}", "--concurrency-key", key
        )
        assert code == 0, err
        assert report["lock_key"] == key
    files = sorted(p for p in ws.lock_dir.iterdir() if p.name.endswith(".lock"))
    assert len(files) == 5
    assert all(p.resolve().parent == ws.lock_dir.resolve() for p in files)
    assert not (ws.root / ".dpone" / "x.lock").exists()
    proc = ws.dpone("orchestrate", "run", "--manifest", "m.yml", "--concurrency-key", "")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_sigterm_marks_failed_and_frees_the_key(ws: Workspace) -> None:
    holder = _start_holder(ws, "r1")
    holder.send_signal(signal.SIGTERM)
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 1, err
    report = json.loads(out)
    assert report["status"] == "failed" and report["blockers"] == ["run.interrupted"]
    state = ws.state("r1")
    assert state["status"] == "failed"
    assert "SIGTERM" in state["transitions"][-1]["reason"]
    beat = (ws.root / "heartbeat.txt").read_text()
    time.sleep(0.3)
    assert (ws.root / "heartbeat.txt").read_text() == beat  # the command was killed too
    code, report, _ = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r2", "--concurrency-key", "r1"
    )
    assert code == 0 and report["stale_lock_replaced"] is False


def test_retry_failing_twice_then_passing(ws: Workspace) -> None:
    _manifest(ws, "--fail-times", "2", "--counter", "counter.txt")
    code, report, _ = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", "--retry-attempts", "2"
    )
    assert code == 0, report
    attempts = report["run_result"]["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "failed", "passed"]
    assert [r[2] for r in ws.records()] == ["1", "2", "3"]


def test_retry_exhausted_records_every_error(ws: Workspace) -> None:
    _manifest(ws, "--fail-times", "2", "--counter", "counter.txt")
    code, report, _ = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", "--retry-attempts", "1"
    )
    assert code == 1 and report["status"] == "failed"
    attempts = report["run_result"]["attempts"]
    assert len(attempts) == 2 and all("code 3" in a["error"] for a in attempts)
    assert ws.state("r1")["run_result"]["attempts"] == attempts


# -- evidence, handoff, secrets -------------------------------------------------------------


def test_evidence_is_immutable_across_attempts(ws: Workspace) -> None:
    _manifest(ws)
    for policy in ("fail", "fail", "restart"):
        ws.orchestrate("--manifest", "m.yml", "--run-id", "r1", "--resume-policy", policy)
    out = ws.root / ".dpone" / "orchestration" / "r1"
    attempts = sorted((out / "invocations").iterdir())
    assert [p.name.rsplit("_", 1)[1] for p in attempts] == ["committed", "blocked", "committed"]
    first = json.loads((attempts[0] / "orchestrated_run.json").read_text())
    assert first["status"] == "committed" and first["job_state"]["attempt"] == 1
    latest = json.loads((out / "orchestrated_run.json").read_text())
    assert latest["job_state"]["attempt"] == 2
    md = (out / "orchestrated_run.md").read_text()
    assert "PASSED" in md and "dpone orchestrate run" in md
    blocked_md = (attempts[1] / "orchestrated_run.md").read_text()
    assert "job_state.already_committed" in blocked_md and "**Action:**" in blocked_md
    for key in (
        "passed",
        "status",
        "run_id",
        "process",
        "lock_key",
        "lock_acquired",
        "stale_lock_replaced",
        "blockers",
        "run_result",
        "scheduler_handoff",
        "job_state",
        "output_dir",
        "schema_version",
    ):
        assert key in latest
    state = ws.state("r1")
    for key in (
        "run_id",
        "process",
        "manifest_path",
        "selector",
        "lock_key",
        "status",
        "started_at",
        "updated_at",
        "attempt",
        "transitions",
        "blockers",
        "run_result",
        "resumable",
        "output_dir",
        "schema_version",
    ):
        assert key in state
    assert "errors" in state["run_result"]["result"]


def test_secrets_never_reach_evidence_logs_or_stdout(ws: Workspace) -> None:
    token = "tok-s3cr3t-value-42"
    ws.write_manifest(
        {
            "job": {
                "kind": "command",
                "command": recorder_command(
                    "--echo", "token=${MY_API_TOKEN}", "--record", "record.txt", "--fail-times", "1"
                ),
                "env": {"CONN": "${WAREHOUSE_URL}"},
            }
        },
        connections={"warehouse": "${WAREHOUSE_URL}"},
    )
    env = {"MY_API_TOKEN": token, "WAREHOUSE_URL": "postgresql://u:pw-hunter2@127.0.0.1:1/db"}
    _code, report, err = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1", env=env)
    proc = ws.dpone(
        "orchestrate",
        "run",
        "--manifest",
        "m.yml",
        "--run-id",
        "r1",
        "--resume-policy",
        "resume",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    everything = "\n".join(
        [json.dumps(report), err, proc.stdout, proc.stderr, all_text_under([ws.root / ".dpone"])]
    )
    assert "token=***" in everything
    assert token not in everything and "pw-hunter2" not in everything


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        ("malformed", ["--manifest", "m.yml"], "m.yml"),
        ("ok", ["--manifest", "m.yml", "--selector", "nope"], "nope"),
        ("wrong_type", ["--manifest", "m.yml"], "timeout_seconds"),
        ("ok", ["--manifest", "missing.yml"], "missing.yml"),
        ("ok", ["--manifest", "m.yml", "--retry-attempts", "-1"], "retry-attempts"),
        ("ok", ["--manifest", "m.yml", "--resume-policy", "maybe"], "resume-policy"),
        ("ok", ["--manifest", "m.yml", "--lock-ttl-seconds", "0"], "lock-ttl-seconds"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    ws: Workspace, setup: str, args: list[str], needle: str
) -> None:
    if setup == "malformed":
        (ws.root / "m.yml").write_text("version: 1\nprocesses: [unclosed\n")
    elif setup == "wrong_type":
        _manifest(ws, timeout_seconds="soon")
    else:
        _manifest(ws)
    proc = ws.dpone("orchestrate", "run", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (ws.root / ".dpone").exists()


def test_stdout_is_only_the_report(ws: Workspace) -> None:
    _manifest(ws, "--echo", "hello-from-the-command")
    proc = ws.dpone("orchestrate", "run", "--format", "json", "--manifest", "m.yml")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["run_id"].startswith("m.job_")
    assert "hello-from-the-command" in report["run_result"]["result"]["stdout_tail"]


def test_status_and_locks_commands(ws: Workspace) -> None:
    holder = _start_holder(ws, "r1")
    try:
        proc = ws.dpone("orchestrate", "locks", "--format", "json")
        rows = json.loads(proc.stdout)
        assert [(r["key"], r["state"], r["holder"]["run_id"]) for r in rows] == [
            ("r1", "held", "r1")
        ]
        proc = ws.dpone("orchestrate", "status", "--run-id", "r1", "--format", "json")
        assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "running"
        assert "running" in ws.dpone("orchestrate", "status", "--run-id", "r1").stdout
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    rows = json.loads(ws.dpone("orchestrate", "locks", "--format", "json").stdout)
    assert rows[0]["state"] == "stale"
    assert "stale" in ws.dpone("orchestrate", "locks").stdout
    missing = ws.dpone("orchestrate", "status", "--run-id", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr


def test_dpone_run_executes_without_orchestration(ws: Workspace) -> None:
    _manifest(ws, "--fail-times", "1", "--counter", "counter.txt")
    proc = ws.dpone(
        "run", "--manifest", "m.yml", "--run-id", "x", "--retry-attempts", "1", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["passed"] and result["run_id"] == "x" and len(result["attempts"]) == 2
    assert not (ws.root / ".dpone").exists()
    assert "PASSED" in ws.dpone("run", "--manifest", "m.yml").stdout


def test_a_refusal_names_the_scheduler_that_committed(ws: Workspace) -> None:
    _manifest(ws)
    code, report, err = ws.orchestrate(
        "--manifest", "m.yml", "--execution-date", "2026-11-30",
        "--dag-id", "shop.orders", "--scheduler-run-id", "scheduled__2026-11-30T02:00:00+00:00",
    )  # fmt: skip
    assert code == 0, err
    state = ws.state(report["run_id"])
    assert state["scheduler"] == {
        "kind": "airflow",
        "name": "shop.orders",
        "run_id": "scheduled__2026-11-30T02:00:00+00:00",
    }
    code, again, _ = ws.orchestrate(
        "--manifest", "m.yml", "--execution-date", "2026-11-30", "--scheduler", "cron"
    )
    assert code == 1 and again["blockers"] == ["job_state.already_committed"]
    message = again["blocker_details"][0]["message"]
    assert "committed by airflow (shop.orders, run scheduled__2026-11-30T02:00:00+00:00)" in message
    assert ws.state(report["run_id"])["scheduler"]["kind"] == "airflow"  # refusals write nothing
    code, plain, _ = ws.orchestrate("--manifest", "m.yml", "--execution-date", "2026-12-01")
    assert code == 0 and ws.state(plain["run_id"])["scheduler"] == {
        "kind": "cli",
        "name": None,
        "run_id": None,
    }
