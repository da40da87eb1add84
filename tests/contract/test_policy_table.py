"""The resume-policy table of DESIGN.md section 6, every cell, on both backends.

Each previous state is made the way it happens in production wherever that is
practical: a real run that committed or failed, a real ``dpone orchestrate
run`` holder that is still running or was killed with SIGKILL. Only a
``blocked`` state (which no current code path leaves behind) is written
directly, through the backend's own store by the holder of the key, and a
corrupt state is injected behind the backend's back. Then one attempt goes
through the public ``OrchestratedRunService``, and the test checks what it
decided, what it executed and what it left in the store: a refused attempt
leaves the stored state byte for byte (row for row) as it was.

The pure decision (tests/test_resume.py) is tested on its own; this is the
same table through the orchestrator and each real backend.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpone_core.lifecycle import JobStatus
from dpone_core.resume import ResumePolicy
from dpone_core.run import OrchestratedRunRequest
from dpone_core.state import AttemptHolder, admit_attempt, advance
from tests.support import Workspace
from tests.support.backends import (
    BackendSite,
    FaultInjector,
    command_manifest,
    executions,
    orchestrated_service,
)

RUN_ID = "r1"
ALREADY_COMMITTED = "job_state.already_committed"
ALREADY_RUNNING = "job_state.already_running"
RESUME_REQUIRED = "job_state.resume_required"
CORRUPT = "job_state.corrupt"
RUN_ID_CONFLICT = "job_state.run_id_conflict"

#: Admitted: (generation afterwards, attempt taken over from a dead holder).
RUN_FRESH = ("run", 1, False)
RUN_RESUME = ("run", 1, False)
RUN_SCRATCH = ("run", 2, False)
TAKEOVER_RESUME = ("run", 1, True)
TAKEOVER_SCRATCH = ("run", 2, True)

# previous state -> {policy: expected}; expected is a blocker code or an admission.
TABLE: dict[str, dict[str, Any]] = {
    "none": {"fail": RUN_FRESH, "resume": RUN_FRESH, "restart": RUN_FRESH},
    "committed": {"fail": ALREADY_COMMITTED, "resume": ALREADY_COMMITTED, "restart": RUN_SCRATCH},
    "running_holder_alive": {
        "fail": ALREADY_RUNNING,
        "resume": ALREADY_RUNNING,
        "restart": ALREADY_RUNNING,
    },
    "running_holder_dead": {
        "fail": ALREADY_RUNNING,
        "resume": TAKEOVER_RESUME,
        "restart": TAKEOVER_SCRATCH,
    },
    "failed": {"fail": RESUME_REQUIRED, "resume": RUN_RESUME, "restart": RUN_SCRATCH},
    "blocked": {"fail": RESUME_REQUIRED, "resume": RUN_RESUME, "restart": RUN_SCRATCH},
    "corrupt": {"fail": CORRUPT, "resume": CORRUPT, "restart": CORRUPT},
    # docs/orchestration.md adds this row: a run id whose state is another process's.
    "other_process": {
        "fail": RUN_ID_CONFLICT,
        "resume": RUN_ID_CONFLICT,
        "restart": RUN_ID_CONFLICT,
    },
}
CELLS = [(previous, policy) for previous, row in TABLE.items() for policy in row]


def _wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached in time"
        time.sleep(0.02)


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class Previous:
    """Makes the previous state of run ``r1`` on one backend, and cleans up after."""

    def __init__(self, site: BackendSite, backend: Any, faults: FaultInjector) -> None:
        self.site, self.backend, self.faults = site, backend, faults
        self.root = site.root
        self.manifest = command_manifest(self.root, "m.yml")
        self.holder: subprocess.Popen[str] | None = None
        self.release = self.root / "release.txt"

    def run(self, manifest: Path, policy: str = "fail") -> Any:
        return orchestrated_service(self.backend).run(
            request=OrchestratedRunRequest(
                manifest_path=str(manifest), run_id=RUN_ID, resume_policy=ResumePolicy(policy)
            ),
            output_dir=self.root / "out",
        )

    def make(self, previous: str) -> None:
        getattr(self, f"_{previous}")()

    def _none(self) -> None:
        pass

    def _committed(self) -> None:
        assert self.run(self.manifest).status == "committed"

    def _failed(self) -> None:
        failing = command_manifest(self.root, "failing.yml", "--fail-times", "1")
        report = self.run(failing)
        assert report.status == "failed" and report.blockers == ["run.not_passed"]

    def _blocked(self) -> None:
        # started -> blocked, written by the holder of the key through the backend's store.
        outcome = self.backend.lock_manager.acquire(RUN_ID, run_id=RUN_ID)
        assert outcome.acquired, outcome.message
        try:
            started = admit_attempt(
                None,
                run_id=RUN_ID,
                process="job",
                manifest_path=str(self.manifest),
                selector="job",
                lock_key=RUN_ID,
                output_dir=str(self.root / "out"),
                holder=AttemptHolder(
                    pid=os.getpid(), host=socket.gethostname(), lock_token=outcome.lock.token
                ),
                from_scratch=False,
            )
            self.backend.job_state_store.save(
                advance(started, JobStatus.BLOCKED, reason="refused before it ran")
            )
        finally:
            outcome.lock.release()

    def _corrupt(self) -> None:
        self.faults.corrupt_state(RUN_ID)

    def _other_process(self) -> None:
        other = command_manifest(self.root, "other.yml", process="other")
        assert self.run(other).status == "committed"

    def _start_holder(self, *args: str) -> subprocess.Popen[str]:
        hold = command_manifest(self.root, "hold.yml", "--until", str(self.release))
        self.holder = Workspace(self.root).popen(
            "orchestrate",
            "run",
            "--format",
            "json",
            "--manifest",
            str(hold),
            "--run-id",
            RUN_ID,
            *args,
            *self.site.cli_args(),
            env=self.site.env,
        )
        _wait_for(lambda: executions(self.root), "the holder's command started")
        return self.holder

    def _running_holder_alive(self) -> None:
        # The holder runs r1 under another key, so the contender gets r1's key and
        # must ask the backend whether the holder of "elsewhere" is alive.
        self._start_holder("--concurrency-key", "elsewhere")

    def _running_holder_dead(self) -> None:
        holder = self._start_holder()
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        command_pid = int(executions(self.root)[0][3])
        _wait_for(lambda: _process_gone(command_pid), "the holder's command died with it")
        self.faults.wait_until_holder_gone(RUN_ID)
        self.holder = None

    def close(self) -> None:
        if self.holder is not None:
            self.release.write_text("go")
            out, err = self.holder.communicate(timeout=60)
            assert self.holder.returncode == 0, (out, err)


@pytest.fixture
def previous_maker(
    backend_site: BackendSite, backend: Any, faults: FaultInjector
) -> Iterator[Previous]:
    maker = Previous(backend_site, backend, faults)
    try:
        yield maker
    finally:
        maker.close()


@pytest.mark.parametrize(("previous", "policy"), CELLS)
def test_policy_table_cell(
    previous_maker: Previous,
    backend_site: BackendSite,
    backend: Any,
    faults: FaultInjector,
    previous: str,
    policy: str,
) -> None:
    previous_maker.make(previous)
    root = backend_site.root
    before_raw = faults.raw_state(RUN_ID)
    before_state = None if previous in ("none", "corrupt") else backend_site.load(RUN_ID)
    before_runs = len(executions(root))

    report = previous_maker.run(previous_maker.manifest, policy)

    expected = TABLE[previous][policy]
    if isinstance(expected, str):
        assert report.status == "blocked", report.blocker_details
        assert report.passed is False and report.blockers == [expected]
        assert len(executions(root)) == before_runs  # nothing executed
        assert faults.raw_state(RUN_ID) == before_raw  # a refusal never rewrites the state
        message = report.blocker_details[0].message
        if previous == "running_holder_dead":
            assert "gone" in message
        if previous == "running_holder_alive":
            assert "alive" in message
        if previous == "corrupt":
            assert backend.job_state_store.location(RUN_ID) in message
        if previous == "other_process":
            assert "'other'" in message
        return

    _, generation, takeover = expected
    assert report.status == "committed", report.blocker_details
    assert report.passed is True and report.blockers == []
    assert len(executions(root)) == before_runs + 1
    state = backend_site.load(RUN_ID)
    assert state is not None and state.status is JobStatus.COMMITTED
    assert state.attempt == (before_state.attempt + 1 if before_state else 1)
    assert state.generation == generation
    earlier = list(before_state.transitions) if before_state else []
    assert state.transitions[: len(earlier)] == earlier  # the whole history is kept
    assert [t.status for t in state.transitions[len(earlier) :]] == [
        JobStatus.STARTED,
        JobStatus.RUNNING,
        JobStatus.COMMITTED,
    ]
    assert report.job_state is not None and report.job_state["attempt"] == state.attempt
    if takeover:
        assert "takeover" in (state.transitions[-3].reason or "")
        # The dead holder's trace on the key was replaced, and the report names it.
        assert report.stale_lock_replaced is True
        assert report.replaced_holder is not None and report.replaced_holder["run_id"] == RUN_ID
    else:
        assert report.stale_lock_replaced is False
