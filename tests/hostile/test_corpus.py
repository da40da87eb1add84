"""Every hostile input, through the real `dpone orchestrate run`: exit 2 (or a named
blocker), one stderr line, no traceback, nothing outside the given dirs, bounded time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.hostile.cases import CASES, Case
from tests.support.workspace import Workspace

GIVEN = ("L", "S", "O")
#: Generous: every case takes well under a second of its own.
TIMEOUT_SECONDS = 60


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` outside the given dirs, with its kind and size."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in GIVEN]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (oct(st.st_mode), st.st_size)
    return out


def _state_files(root: Path) -> list[Path]:
    return sorted((root / "S").glob("*.job_state.json")) if (root / "S").is_dir() else []


def test_the_corpus_is_large_and_named_uniquely() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(names) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    args = case.setup(tmp_path)
    states_before = _state_files(tmp_path)
    before = _tree(tmp_path)
    started = time.monotonic()
    proc = ws.dpone(
        "orchestrate", "run", "--format", "json", "--run-id", "r", *args,
        "--lock-dir", "L", "--state-dir", "S", "--output-dir", "O",
        env=case.env, timeout=TIMEOUT_SECONDS,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == case.exit_code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert elapsed < TIMEOUT_SECONDS / 2
    assert _tree(tmp_path) == before, "a file changed outside --lock-dir/--state-dir/--output-dir"
    assert not (tmp_path / "outside-target").exists()
    if case.exit_code == 2:
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, lines
        assert case.expect in lines[0] and lines[0].startswith("dpone"), lines[0]
        assert len(lines[0]) < 12_000
        assert proc.stdout == ""
        assert _state_files(tmp_path) == states_before, "an invalid input was admitted"
    elif case.exit_code == 1:
        report = json.loads(proc.stdout)
        assert case.expect in report["blockers"], report["blocker_details"]
        assert report["status"] == "blocked"
        assert len(proc.stderr.splitlines()) <= 1
    else:
        assert json.loads(proc.stdout)["status"] == "committed"
