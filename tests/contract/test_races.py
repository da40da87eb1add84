"""Many real `dpone orchestrate run` processes at one instant, on both backends.

Every racer is a separate interpreter running the real CLI with ``--backend
files|postgresql``, imported before the start so that all of them reach the
code under test together (tests/support/racing.py, cli_at.py), and the
winner's command holds until every loser has decided, so a late racer can
never legitimately win a second time.
"""

from __future__ import annotations

from typing import Any

import pytest

from dpone_core.lifecycle import JobStatus
from tests.support import CLI_AT, race_at_once
from tests.support.backends import BackendSite, FaultInjector, command_manifest, executions

RACERS = 16


def _racers(site: BackendSite, run_id: Any, key: Any) -> list[Any]:
    """RACERS processes running hold.yml, racer i with run id run_id(i) and key key(i)."""
    release = site.root / "release.txt"
    command_manifest(site.root, "hold.yml", "--until", str(release))
    results = race_at_once(
        lambda i: [
            "orchestrate",
            "run",
            "--format",
            "json",
            "--manifest",
            "hold.yml",
            "--run-id",
            run_id(i),
            "--concurrency-key",
            key(i),
            *site.cli_args(),
        ],
        n=RACERS,
        cwd=site.root,
        release=release,
        env=site.env,
        barrier=CLI_AT,
    )
    for result in results:
        assert "Traceback" not in result.stderr, result.stderr
        assert result.report, f"exit {result.returncode} without a report: {result.stderr}"
    return results


@pytest.mark.slow
@pytest.mark.parametrize("over", ["free_key", "stale_holder"])
def test_racers_on_one_key_exactly_one_executes(
    backend_site: BackendSite, faults: FaultInjector, over: str
) -> None:
    if over == "stale_holder":
        faults.plant_stale_holder("shared", run_id="ghost")

    results = _racers(backend_site, lambda i: f"racer{i}", lambda i: "shared")

    winners = [r.report for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [r.report.get("blockers") for r in results]
    [winner] = winners
    assert winner["status"] == "committed"
    assert [e[0] for e in executions(backend_site.root)] == [winner["run_id"]]
    assert all(r.returncode == 1 for r in losers)
    assert all(r.report["blockers"] == ["lock.concurrent_run"] for r in losers), [
        r.report["blockers"] for r in losers
    ]
    # Exactly the winner replaced the dead holder's trace, and said so.
    assert winner["stale_lock_replaced"] is (over == "stale_holder")
    if over == "stale_holder":
        assert winner["replaced_holder"]["run_id"] == "ghost"
    assert not any(r.report["stale_lock_replaced"] for r in losers)
    # Refused attempts never create a job state.
    for r in losers:
        assert backend_site.load(r.report["run_id"]) is None


@pytest.mark.slow
def test_racers_on_one_run_id_under_different_keys_admit_exactly_one_attempt(
    backend_site: BackendSite,
) -> None:
    """No key excludes them: the job state alone must admit exactly one attempt.

    Contenders that read "no state" at the same moment can only be told apart
    when they write: the store's compare-and-set lets one admission through.
    """
    results = _racers(backend_site, lambda i: "shared_run", lambda i: f"key{i}")

    winners = [r.report for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [(r.returncode, r.report.get("blockers")) for r in results]
    assert len(executions(backend_site.root)) == 1
    for r in losers:
        assert r.returncode == 1 and r.report["status"] == "blocked"
        assert r.report["blockers"][0] in (
            "job_state.already_running",  # it read the winner's admission
            "job_state.write_conflict",  # it read "no state" too, and lost the write
        ), r.report["blocker_details"]
    state = backend_site.load("shared_run")
    assert state is not None
    assert (state.status, state.attempt) == (JobStatus.COMMITTED, 1)
    assert [t.status for t in state.transitions] == [
        JobStatus.STARTED,
        JobStatus.RUNNING,
        JobStatus.COMMITTED,
    ]
    assert state.lock_key == winners[0]["lock_key"]
