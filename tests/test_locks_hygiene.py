"""Lock-file hygiene (issue 9): no symlink is followed, an unlistable lock dir is an error,
--prune deletes only provably free keys and never breaks exclusion, messages show paths as
text; and untrusted text is escaped before it reaches a log or Markdown line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpone_core.backends.file_locks import LocalRunLockManager
from dpone_core.errors import OrchestrationBackendError
from dpone_core.naming import file_safe_name
from dpone_core.render import escape_control, job_state_markdown, locks_markdown
from tests.support.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def _locks_cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return ws.dpone("orchestrate", "locks", *args)


# ----------------------------------------------------------------------- symlinks


def test_a_symlinked_lock_file_is_refused_and_its_target_never_created(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    target = tmp_path / "outside" / "victim"
    target.parent.mkdir()
    (lock_dir / f"{file_safe_name('k')}.lock").symlink_to(target)
    got = LocalRunLockManager(lock_dir).acquire("k", run_id="r")
    assert not got.acquired and got.blocker == "lock.corrupt"
    assert "symbolic link" in got.message and "left untouched" in got.message
    assert not target.exists()
    assert (lock_dir / f"{file_safe_name('k')}.lock").is_symlink()  # not deleted


def test_a_symlink_to_an_existing_file_is_neither_locked_nor_written(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    target = tmp_path / "precious"
    target.write_text("keep")
    (lock_dir / "k.lock").symlink_to(target)
    got = LocalRunLockManager(lock_dir).acquire("k", run_id="r")
    assert got.blocker == "lock.corrupt"
    assert target.read_text() == "keep"


def test_a_lock_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    os.mkfifo(lock_dir / "k.lock")
    got = LocalRunLockManager(lock_dir).acquire("k", run_id="r")
    assert got.blocker == "lock.corrupt" and "not a regular file" in got.message


def test_a_symlinked_record_is_corrupt_and_its_target_never_overwritten(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    target = tmp_path / "precious.json"
    target.write_text("keep")
    (lock_dir / "k.lock.json").symlink_to(target)
    manager = LocalRunLockManager(lock_dir)
    got = manager.acquire("k", run_id="r")
    assert got.blocker == "lock.corrupt" and "symbolic link" in got.message
    assert target.read_text() == "keep"
    assert [s.state for s in manager.inspect()] == ["corrupt"]
    assert manager.prune() == []
    assert (lock_dir / "k.lock.json").is_symlink() and target.read_text() == "keep"


# ----------------------------------------------------------------------- lock dir


def test_locks_on_a_lock_dir_that_is_a_file_exits_1_naming_it(ws: Workspace) -> None:
    (ws.root / "L").write_text("x")
    proc = _locks_cli(ws, "--lock-dir", "L")
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "lock directory L" in lines[0] and "Traceback" not in proc.stderr


def test_locks_on_an_unreadable_lock_dir_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "L").mkdir()

    def denied(path: object) -> list[str]:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "listdir", denied)
    with pytest.raises(OrchestrationBackendError, match=r"lock directory .*L: cannot be listed"):
        LocalRunLockManager(tmp_path / "L").inspect()


def test_locks_cli_on_an_unreadable_dir_exits_1(ws: Workspace) -> None:
    """A real permission error. Root reads any directory, so as root the CLI runs without
    the capabilities that let it (util-linux ``setpriv``, part of every Debian system)."""
    (ws.root / "L").mkdir()
    (ws.root / "L").chmod(0)
    argv = ws.argv("orchestrate", "locks", "--lock-dir", "L")
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]
    try:
        proc = subprocess.run(argv, cwd=ws.root, capture_output=True, text=True, timeout=60)
    finally:
        (ws.root / "L").chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert "lock directory L: cannot be listed (Permission denied)" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_missing_lock_dir_still_means_no_locks(ws: Workspace) -> None:
    proc = _locks_cli(ws, "--lock-dir", "missing")
    assert proc.returncode == 0 and "No lock records." in proc.stdout
    assert not (ws.root / "missing").exists()


def test_a_lock_dir_that_is_a_file_names_the_path_as_text(tmp_path: Path) -> None:
    (tmp_path / "RL").write_text("x")
    with pytest.raises(OSError) as caught:
        LocalRunLockManager(tmp_path / "RL").acquire("x", run_id="r")
    assert isinstance(caught.value.filename, str)
    assert "b'" not in f"{caught.value.filename}: {caught.value.strerror}"


def test_the_cli_never_shows_a_bytes_repr(ws: Workspace) -> None:
    ws.write_manifest({"p": {"kind": "command", "command": ["true"]}})
    (ws.root / "RL").write_text("x")
    code, _, stderr = ws.orchestrate("--manifest", "m.yml", "--run-id", "x", "--lock-dir", "RL")
    assert code == 2 and "b'" not in stderr and "RL/x.lock" in stderr


# ----------------------------------------------------------------------- prune


def test_prune_removes_only_free_keys(tmp_path: Path) -> None:
    lock_dir = tmp_path / "L"
    manager = LocalRunLockManager(lock_dir)
    manager.acquire("free", run_id="r").lock.release()  # type: ignore[union-attr]
    held = manager.acquire("held", run_id="r")
    assert held.lock is not None
    (lock_dir / "corrupt.lock.json").write_text("{")
    dead = manager.acquire("dead", run_id="r")
    assert dead.lock is not None
    record = json.loads((lock_dir / "dead.lock.json").read_text())
    dead.lock.release()
    (lock_dir / "dead.lock.json").write_text(json.dumps({**record, "pid": 2**22 + 7}))
    (lock_dir / "far.lock.json").write_text(
        json.dumps({**record, "key": "far", "host": "elsewhere", "token": "t"})
    )
    with held.lock:
        assert manager.prune() == ["dead", "free"]
        names = sorted(os.listdir(lock_dir))
    assert names == [
        "corrupt.lock",
        "corrupt.lock.json",
        "far.lock",
        "far.lock.json",
        "held.lock",
        "held.lock.json",
    ]
    assert manager.prune() == ["held"]


def test_prune_cli_prints_what_it_pruned(ws: Workspace) -> None:
    LocalRunLockManager(ws.root / "L").acquire("a/b", run_id="r").lock.release()  # type: ignore[union-attr]
    proc = _locks_cli(ws, "--lock-dir", "L", "--prune", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"pruned": ["a/b"]}
    assert os.listdir(ws.root / "L") == []
    proc = _locks_cli(ws, "--lock-dir", "L", "--prune")
    assert proc.returncode == 0 and "Nothing to prune" in proc.stdout


# Every racer and pruner imports dpone_core, signals it is ready, waits for "go", then
# races for RACE_SECONDS of its own: under load, start-up takes longer than a race (a
# fixed deadline set by the parent once expired before the first racer had started).
_START = r"""
import os, pathlib, sys, time
ready, go, seconds = pathlib.Path(sys.argv[-3]), pathlib.Path(sys.argv[-2]), float(sys.argv[-1])
(ready / str(os.getpid())).touch()
while not go.exists():
    time.sleep(0.01)
until = time.time() + seconds
"""
RACE_SECONDS = 3.0

_RACER = r"""
import random
from dpone_core.backends.file_locks import LocalRunLockManager
""" + _START + r"""
lock_dir, inside = sys.argv[1], sys.argv[2]
manager = LocalRunLockManager(lock_dir)
entered = violations = 0
while time.time() < until:
    time.sleep(random.random() * 0.01)  # gaps in which the key is free and prunable
    got = manager.acquire("k", run_id=f"r{os.getpid()}")
    if got.lock is None:
        continue
    with got.lock:
        try:
            fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            violations += 1
            continue
        entered += 1
        time.sleep(0.001)
        os.close(fd)
        os.unlink(inside)
print(entered, violations)
"""

_PRUNER = r"""
from dpone_core.backends.file_locks import LocalRunLockManager
""" + _START + r"""
manager = LocalRunLockManager(sys.argv[1])
pruned = 0
while time.time() < until:
    pruned += len(manager.prune())
print(pruned)
"""


def test_prune_racing_16_acquirers_keeps_exclusion(tmp_path: Path) -> None:
    lock_dir = tmp_path / "L"
    lock_dir.mkdir()
    inside = tmp_path / "inside"
    ready, go = tmp_path / "ready", tmp_path / "go"
    ready.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start_args = (str(ready), str(go), str(RACE_SECONDS))

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", script, *args, *start_args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    racers = [start(_RACER, str(lock_dir), str(inside)) for _ in range(16)]
    pruners = [start(_PRUNER, str(lock_dir)) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(os.listdir(ready)) < len(racers) + len(pruners):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(proc.poll() is None for proc in racers + pruners), "a racer died at start"
        time.sleep(0.02)
    go.touch()
    results = [proc.communicate(timeout=120)[0].split() for proc in racers]
    pruned = sum(int(proc.communicate(timeout=120)[0]) for proc in pruners)
    assert all(proc.returncode == 0 for proc in racers + pruners)
    assert sum(int(violations) for _, violations in results) == 0
    assert sum(int(entered) for entered, _ in results) > 0
    assert pruned > 0, "the race never pruned: the test proves nothing"


# ----------------------------------------------------------------------- control characters


def test_escape_control_makes_one_visible_line() -> None:
    assert escape_control("plain/../key") == "plain/../key"
    assert escape_control("a\nb\r\t\x1b[31m\x00\x7f\x85\u2028") == (
        "a\\nb\\r\\t\\x1b[31m\\x00\\x7f\\x85\\u2028"
    )


def test_markdown_views_escape_run_ids_and_keys() -> None:
    forged = "r\ndpone: p: run r passed\x1b[2J"
    state = {"run_id": forged, "lock_key": forged, "transitions": [{"reason": forged}]}
    rows = [{"key": forged, "state": "held", "holder": {"run_id": forged}}]
    for text in (job_state_markdown(state, forged), locks_markdown(rows, forged)):
        assert "\x1b" not in text and "\ndpone: p:" not in text
