"""Who may write a key or a run's state, on both backends: dead holders and other writers.

- A dead holder's trace on a key (a holder record naming a dead pid, a lease
  row whose session is gone) is replaced by the next acquirer, which says so.
- A writer that changed a run's state while an attempt executed is never
  overwritten: the attempt's end is refused by the store's compare-and-set and
  the attempt reports ``blocked`` with ``job_state.write_conflict``.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from dpone_core.executor import RunManifestService
from dpone_core.lifecycle import JobStatus
from dpone_core.run import OrchestratedRunRequest
from dpone_core.state import AttemptHolder, admit_attempt, advance
from tests.support.backends import (
    BackendSite,
    FaultInjector,
    command_manifest,
    executions,
    orchestrated_service,
)


def test_a_dead_holder_of_the_key_is_replaced_and_the_run_commits(
    backend_site: BackendSite, backend: Any, faults: FaultInjector
) -> None:
    faults.plant_stale_holder("orders", run_id="ghost")
    [status] = backend.lock_manager.inspect()
    assert (status.key, status.state) == ("orders", "stale")
    manifest = command_manifest(backend_site.root, "m.yml")

    report = orchestrated_service(backend).run(
        request=OrchestratedRunRequest(
            manifest_path=str(manifest), run_id="r1", concurrency_key="orders"
        ),
        output_dir=backend_site.root / "out",
    )

    assert report.status == "committed", report.blocker_details
    assert report.lock_acquired is True and report.stale_lock_replaced is True
    assert report.replaced_holder is not None and report.replaced_holder["run_id"] == "ghost"
    assert [e[0] for e in executions(backend_site.root)] == ["r1"]
    state = backend_site.load("r1")
    assert state is not None and state.status is JobStatus.COMMITTED
    # The winner released the key normally: the next acquirer replaces nothing.
    again = backend.lock_manager.acquire("orders", run_id="next")
    assert again.acquired and again.stale_lock_replaced is False, again.message
    again.lock.release()


def test_a_state_changed_behind_the_attempts_back_is_not_overwritten(
    backend_site: BackendSite, backend: Any, faults: FaultInjector
) -> None:
    """While the attempt runs, another holder takes the run over under another key.

    The other writer goes through the public API only: it holds its own key
    and writes through its own store instance (its own backend object), as a
    process on another host would.
    """
    root = backend_site.root
    manifest = command_manifest(root, "m.yml")
    real_executor = RunManifestService().execute
    other = backend_site.open()
    seen: dict[str, Any] = {}

    def executor_with_an_intruder(request: Any) -> Any:
        result = real_executor(request)
        outcome = other.lock_manager.acquire("intruder", run_id="r1")
        assert outcome.acquired, outcome.message
        seen["lock"] = outcome.lock
        previous = other.job_state_store.load("r1")
        assert previous is not None and previous.status is JobStatus.RUNNING
        takeover = admit_attempt(
            previous,
            run_id="r1",
            process=previous.process,
            manifest_path=previous.manifest_path,
            selector=previous.selector,
            lock_key="intruder",
            output_dir=str(root / "intruder-out"),
            holder=AttemptHolder(
                pid=os.getpid(), host=socket.gethostname(), lock_token=outcome.lock.token
            ),
            from_scratch=False,
        )
        written = advance(takeover, JobStatus.RUNNING, reason="the other writer")
        other.job_state_store.save(written)
        seen["state"], seen["raw"] = written, faults.raw_state("r1")
        return result

    try:
        report = orchestrated_service(backend, executor_with_an_intruder).run(
            request=OrchestratedRunRequest(manifest_path=str(manifest), run_id="r1"),
            output_dir=root / "out",
        )

        assert report.status == "blocked", report.blocker_details
        assert report.passed is False
        assert report.blockers[0] == "job_state.write_conflict", report.blocker_details
        assert len(executions(root)) == 1  # it did run; only its end was refused
        # The evidence of the refused end is written like any other attempt's.
        evidence = json.loads((root / "out" / "orchestrated_run.json").read_text())
        assert evidence["status"] == "blocked"
        assert evidence["blockers"][0] == "job_state.write_conflict"
        # The other writer's state stands, as it wrote it.
        assert faults.raw_state("r1") == seen["raw"]
        stored = backend_site.load("r1")
        assert stored == seen["state"]
        assert (stored.status, stored.attempt, stored.lock_key) == (
            JobStatus.RUNNING,
            2,
            "intruder",
        )
        # The refused attempt let go of its own key.
        after = backend.lock_manager.acquire("r1", run_id="after")
        assert after.acquired and after.stale_lock_replaced is False, after.message
        after.lock.release()
    finally:
        if "lock" in seen:
            seen["lock"].release()
        other.close()
