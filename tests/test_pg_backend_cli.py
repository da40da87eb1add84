"""`dpone orchestrate` on the PostgreSQL backend, end to end: real processes, real sessions.

Separate working directories and lock directories stand in for separate
hosts: with this backend nothing they share on disk matters, only the
server. The DSN always carries a password (trust authentication ignores it),
and the tests check that it never appears anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_locks import PostgresRunLockManager
from tests.support import Workspace, all_text_under, recorder_command
from tests.support.pg import TEST_DSN, drop_schema, dsn_with_password, new_schema, query, terminate

DSN_ENV = "DPONE_ORCHESTRATION_DSN"
FIRST_USE = Path(__file__).parent / "support" / "pg_first_use.py"


@dataclass
class PgWorkspace(Workspace):
    schema: str = ""
    dsn: str = ""
    password: str = ""

    @property
    def backend_args(self) -> list[str]:
        return ["--backend", "postgresql", "--backend-schema", self.schema]

    @property
    def env(self) -> dict[str, str]:
        return {DSN_ENV: self.dsn}

    def pg(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.dpone(*args, *self.backend_args, env={**self.env, **kw.pop("env", {})}, **kw)

    def pg_run(self, *args: str) -> tuple[int, dict[str, Any], str]:
        proc = self.pg("orchestrate", "run", "--format", "json", *args)
        report = json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc.returncode, report, proc.stderr

    def pg_popen(self, *args: str) -> subprocess.Popen[str]:
        return self.popen(
            "orchestrate", "run", "--format", "json", *args, *self.backend_args, env=self.env
        )

    def pg_state(self, run_id: str) -> dict[str, Any]:
        proc = self.pg("orchestrate", "status", "--run-id", run_id, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[PgWorkspace]:
    dsn, password = dsn_with_password()
    workspace = PgWorkspace(tmp_path, schema=new_schema(), dsn=dsn, password=password)
    yield workspace
    drop_schema(workspace.schema)


def _manifest(root: Path, *args: str, record: Path | None = None) -> Path:
    return Workspace(root).write_manifest(
        {
            "job": {
                "kind": "command",
                "command": recorder_command("--record", str(record or root / "record.txt"), *args),
            }
        }
    )


def _records(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def _start_holder(ws: PgWorkspace, run_id: str = "r1") -> subprocess.Popen[str]:
    _manifest(ws.root, "--sleep", "30", "--heartbeat", "heartbeat.txt")
    holder = ws.pg_popen("--manifest", "m.yml", "--run-id", run_id)
    _wait_for(lambda: (ws.root / "heartbeat.txt").exists())
    return holder


# -- concurrency --------------------------------------------------------------------------


def test_sixteen_processes_create_the_schema_once_without_errors(ws: PgWorkspace) -> None:
    """Concurrent first use: every process finds the tables missing at the same instant."""
    when = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, str(FIRST_USE), ws.schema, str(when)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **ws.env},
        )
        for _ in range(16)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == "", err
        assert out.strip() == "1"
    assert query(f"SELECT version FROM {ws.schema}.schema_version") == [(1,)]
    tables = query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        ws.schema,
    )
    assert [t[0] for t in tables] == [
        "job_state_transitions",
        "job_states",
        "run_locks",
        "schema_version",
    ]
    # ...and the CLI works on it from then on.
    proc = ws.pg("orchestrate", "locks", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr


# -- crashes and lost sessions ---------------------------------------------------------------


def test_kill_9_of_the_holder_frees_the_key_at_once_and_resume_takes_over(
    ws: PgWorkspace,
) -> None:
    holder = _start_holder(ws)
    rows = json.loads(ws.pg("orchestrate", "locks", "--format", "json").stdout)
    assert [(r["key"], r["state"], r["holder"]["run_id"]) for r in rows] == [("r1", "held", "r1")]

    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    killed = time.monotonic()
    manager = PostgresRunLockManager(PostgresTarget(TEST_DSN, ws.schema), on_lost=None)
    # Free as soon as the server sees the socket close: polled against a deadline far
    # below the TTL (3600 s), not timed (bench/ measures speed).
    while not (probe := manager.acquire("r1", run_id="probe")).acquired:
        assert time.monotonic() - killed < 10.0, probe.message
        time.sleep(0.01)
    assert probe.stale_lock_replaced and probe.replaced_holder is not None
    assert probe.replaced_holder.run_id == "r1"
    assert probe.lock is not None
    probe.lock.release()

    assert ws.pg_state("r1")["status"] == "running"
    _manifest(ws.root)
    code, report, _ = ws.pg_run("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1 and report["blockers"] == ["job_state.already_running"]
    assert "gone" in report["blocker_details"][0]["message"]
    assert ws.pg_state("r1")["status"] == "running"  # a refusal writes nothing

    code, report, err = ws.pg_run(
        "--manifest", "m.yml", "--run-id", "r1", "--resume-policy", "resume"
    )
    assert code == 0, err
    state = ws.pg_state("r1")
    assert (state["status"], state["attempt"], state["generation"]) == ("committed", 2, 1)
    assert "takeover" in (state["transitions"][2]["reason"] or "")
    assert [r[0] for r in _records(ws.root / "record.txt")] == ["r1", "r1"]


def test_terminating_the_lock_session_mid_run_stops_the_run_and_records_why(
    ws: PgWorkspace,
) -> None:
    holder = _start_holder(ws)
    [(backend_pid,)] = query(
        f"SELECT backend_pid FROM {ws.schema}.run_locks WHERE key = 'r1' AND held"
    )
    assert terminate(backend_pid)
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 1, err
    report = json.loads(out)
    assert report["status"] == "failed" and report["blockers"] == ["run.interrupted"]
    message = report["blocker_details"][0]["message"]
    assert "lost the lock of key 'r1'" in message and "administrator command" in message
    assert "lost the lock of key 'r1'" in err  # the one stderr line says it too

    state = ws.pg_state("r1")
    assert state["status"] == "failed" and state["resumable"] is True
    assert [t["status"] for t in state["transitions"]] == ["started", "running", "failed"]
    assert "session ended" in state["transitions"][-1]["reason"]
    # The command was stopped with its orchestrator: its heartbeat no longer moves.
    beat = (ws.root / "heartbeat.txt").read_text()
    time.sleep(0.3)
    assert (ws.root / "heartbeat.txt").read_text() == beat
    assert len(_records(ws.root / "record.txt")) == 1

    _manifest(ws.root)
    code, report, err = ws.pg_run(
        "--manifest", "m.yml", "--run-id", "r1", "--resume-policy", "resume"
    )
    assert code == 0, err
    assert ws.pg_state("r1")["attempt"] == 2


# -- secrets, handoff, selection ----------------------------------------------------------------


def test_the_dsn_password_appears_in_no_output_evidence_state_or_handoff(ws: PgWorkspace) -> None:
    _manifest(ws.root, "--fail-times", "1", "--counter", "counter.txt")
    outputs: list[str] = []

    def keep(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    failed = keep(
        ws.pg("orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", "r1")
    )
    assert failed.returncode == 1
    resumed = keep(
        ws.pg(
            "orchestrate",
            "run",
            "--manifest",
            "m.yml",
            "--run-id",
            "r1",
            "--resume-policy",
            "resume",
        )
    )
    assert resumed.returncode == 0, resumed.stderr
    refused = keep(ws.pg("orchestrate", "run", "--manifest", "m.yml", "--run-id", "r1"))
    assert refused.returncode == 1
    for fmt in ("json", "md"):
        assert (
            keep(ws.pg("orchestrate", "status", "--run-id", "r1", "--format", fmt)).returncode == 0
        )
        assert keep(ws.pg("orchestrate", "locks", "--format", fmt)).returncode == 0
    # The DSN by value on the command line: still nowhere in what dpone writes.
    by_value = keep(
        ws.dpone(
            "orchestrate",
            "run",
            "--format",
            "json",
            "--manifest",
            "m.yml",
            "--run-id",
            "r2",
            "--backend",
            ws.dsn,
            "--backend-schema",
            ws.schema,
        )
    )
    assert by_value.returncode == 0, by_value.stderr
    unreachable = ws.dsn.replace(":5432", ":1") if ":5432" in ws.dsn else ws.dsn + "?port=1"
    down = keep(ws.dpone("orchestrate", "run", "--manifest", "m.yml", "--backend", unreachable))
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert "cannot connect" in down.stderr and "Traceback" not in down.stderr

    stored = query(
        f"SELECT s.document::text, t.reason FROM {ws.schema}.job_states s "
        f"LEFT JOIN {ws.schema}.job_state_transitions t USING (run_id)"
    )
    leases = query(f"SELECT row_to_json(l)::text FROM {ws.schema}.run_locks l")
    everything = "\n".join(
        [*outputs, all_text_under([ws.root / ".dpone"]), repr(stored), repr(leases)]
    )
    assert ws.password not in everything

    handoff = json.loads(by_value.stdout)["scheduler_handoff"]
    assert "--backend postgresql" in handoff["cron_command"]
    assert ws.schema in handoff["cron_command"]
    for snippet in ("airflow_task", "dagster_asset", "kubernetes_cronjob"):
        assert DSN_ENV in handoff[snippet], snippet
    assert "secretKeyRef" in handoff["kubernetes_cronjob"]


def test_the_cron_handoff_reaches_the_same_backend_through_the_variable(ws: PgWorkspace) -> None:
    _manifest(ws.root)
    code, report, err = ws.pg_run("--manifest", "m.yml", "--execution-date", "2026-11-29")
    assert code == 0, err
    cron = report["scheduler_handoff"]["cron_command"]
    assert ws.password not in cron
    env = {k: v for k, v in os.environ.items() if k != DSN_ENV}

    def cron_run(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", cron],
            cwd="/",
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
        )

    # Without the variable the handoff refuses to fall back to local files.
    missing = cron_run({})
    assert missing.returncode == 2 and DSN_ENV in missing.stderr
    again = cron_run({DSN_ENV: ws.dsn})
    assert again.returncode == 0, again.stderr
    today = datetime.now(UTC).strftime("%Y_%m_%d")
    state = ws.pg_state(f"m.job_{today}")
    assert (state["status"], state["lock_key"]) == ("committed", "m.job")
    assert not (ws.root / ".dpone" / "orchestration-state").exists()


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--backend", "mysql://u:pw-x@h/db"], {}, "not a backend"),
        (["--backend", "postgresql"], {}, DSN_ENV),
        (["--backend", "postgresql://u:pw-x@h/db?bogus=1"], {}, "invalid PostgreSQL DSN"),
        (["--backend", "postgresql", "--backend-schema", "no-dashes"], {DSN_ENV: "x"}, "schema"),
        (["--backend", "files", "--backend-schema", "s"], {}, "--backend-schema"),
    ],
)
def test_bad_backend_values_exit_2_with_one_line(
    ws: PgWorkspace, args: list[str], env: dict[str, str], needle: str
) -> None:
    _manifest(ws.root)
    clean = {DSN_ENV: ""} | env
    for command in (["orchestrate", "run", "--manifest", "m.yml"], ["orchestrate", "locks"]):
        proc = ws.dpone(*command, *args, env=clean)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr
        assert "pw-x" not in proc.stderr and proc.stdout == ""


def test_help_and_the_file_backend_never_import_the_driver(ws: PgWorkspace) -> None:
    _manifest(ws.root)
    code = (
        "import sys\n"
        "from dpone_core.cli import main\n"
        "for argv in (['orchestrate', 'run', '--help'], ['--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('AFTER-HELP', 'psycopg' in sys.modules)\n"
        "main(['orchestrate', 'run', '--manifest', 'm.yml', '--format', 'json'])\n"
        "print('AFTER-RUN', 'psycopg' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != DSN_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ws.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "AFTER-HELP False" in out.stdout and "AFTER-RUN False" in out.stdout, out.stderr
