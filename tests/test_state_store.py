"""LocalJobStateStore against real files: atomic writes, corrupt files left untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dpone_core.lifecycle import IllegalTransition, JobStatus
from dpone_core.state import (
    AttemptHolder,
    CorruptJobState,
    JobState,
    LocalJobStateStore,
    admit_attempt,
    advance,
)

HOLDER = AttemptHolder(pid=os.getpid(), host="h")


def _admit(previous: JobState | None, from_scratch: bool = False) -> JobState:
    return admit_attempt(
        previous,
        run_id="r/1",
        process="p",
        manifest_path="m.yml",
        selector="p",
        lock_key="k",
        output_dir="out",
        holder=HOLDER,
        from_scratch=from_scratch,
    )


def test_round_trip_and_schema_version(tmp_path: Path) -> None:
    store = LocalJobStateStore(tmp_path)
    state = advance(_admit(None), JobStatus.RUNNING)
    store.save(state)
    raw = json.loads(store.path_for("r/1").read_text())
    assert raw["schema_version"] == 1
    assert raw["status"] == "running"
    assert [t["status"] for t in raw["transitions"]] == ["started", "running"]
    assert store.load("r/1") == state
    assert store.path_for("r/1").parent == tmp_path
    # no temp files left; the directory's one compare-and-set lock file stays
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".compare_and_set.lock", "r%2F1.job_state.json"]


def test_history_and_attempts_carry_over_and_restart_bumps_generation() -> None:
    first = advance(advance(_admit(None), JobStatus.RUNNING), JobStatus.FAILED, reason="boom")
    assert first.resumable
    resumed = advance(_admit(first), JobStatus.RUNNING)
    assert resumed.attempt == 2 and resumed.generation == 1
    committed = advance(resumed, JobStatus.COMMITTED, checkpoint={"load_id": "x"})
    assert not committed.resumable
    restarted = _admit(committed, from_scratch=True)
    assert restarted.attempt == 3 and restarted.generation == 2 and restarted.checkpoint is None
    assert [t.status for t in restarted.transitions] == [
        "started",
        "running",
        "failed",
        "started",
        "running",
        "committed",
        "started",
    ]
    assert [t.attempt for t in restarted.transitions] == [1, 1, 1, 2, 2, 2, 3]
    assert all(t.at.endswith("Z") for t in restarted.transitions)


def test_illegal_transitions_raise() -> None:
    state = _admit(None)
    with pytest.raises(IllegalTransition):
        advance(state, JobStatus.COMMITTED)
    with pytest.raises(IllegalTransition):
        _admit(state)  # cannot admit from started


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b'{"schema_version": 99}', b"[]", b"\xff\xfe garbage"],
)
def test_corrupt_file_raises_and_is_untouched(tmp_path: Path, content: bytes) -> None:
    store = LocalJobStateStore(tmp_path)
    path = store.path_for("r/1")
    path.write_bytes(content)
    before = os.stat(path)
    with pytest.raises(CorruptJobState) as info:
        store.load("r/1")
    assert str(path) in str(info.value)
    assert path.read_bytes() == content
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_state_of_another_run_id_is_corrupt(tmp_path: Path) -> None:
    store = LocalJobStateStore(tmp_path)
    state = _admit(None)
    store.path_for("other").write_text(state.model_dump_json())
    with pytest.raises(CorruptJobState, match="holds run id"):
        store.load("other")


def test_missing_is_none(tmp_path: Path) -> None:
    assert LocalJobStateStore(tmp_path / "nope").load("x") is None
