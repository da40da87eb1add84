"""One lock file, one byte per key: exclusion across real processes, threads, symlinks."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dpone_core.backends.slot_lock import SlotLockFile, slot_of

#: Waits for a file to appear; every wait in these tests is bounded by it.
_DEADLINE_SECONDS = 30.0


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)


def _probe_locked(lock_path: Path, key: str) -> bool:
    """Whether another process finds ``key``'s byte locked (a non-blocking try)."""
    code = textwrap.dedent(
        f"""
        import fcntl, os, sys
        fd = os.open({str(lock_path)!r}, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {slot_of(key)}, os.SEEK_SET)
        except OSError:
            sys.exit(3)
        sys.exit(0)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert result.returncode in (0, 3), result
    return result.returncode == 3


def _child(lock_path: Path, key: str, done: Path) -> subprocess.Popen[bytes]:
    """A process that takes ``key``'s slot (blocking), writes ``done``, and releases it."""
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from dpone_core.backends.slot_lock import SlotLockFile
        with SlotLockFile({str(lock_path)!r}).held({key!r}):
            Path({str(done)!r}).write_text(repr(time.monotonic()))
        """
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_held_slot_blocks_another_process_until_it_is_released(tmp_path: Path) -> None:
    lock = SlotLockFile(tmp_path / ".compare_and_set.lock")
    done = tmp_path / "done"
    with lock.held("run-a"):
        child = _child(lock.path, "run-a", done)
        time.sleep(0.5)  # the child has had every chance to take the slot
        assert not done.exists()
        released = time.monotonic()
    assert child.wait(timeout=60) == 0
    assert float(done.read_text()) >= released


def test_another_key_is_not_blocked_by_a_held_slot(tmp_path: Path) -> None:
    assert slot_of("run-a") != slot_of("run-b")
    lock = SlotLockFile(tmp_path / ".compare_and_set.lock")
    done = tmp_path / "done"
    with lock.held("run-a"):
        child = _child(lock.path, "run-b", done)
        _wait_for(done)  # while run-a is still held
        assert _probe_locked(lock.path, "run-a")
    assert child.wait(timeout=60) == 0
    assert not _probe_locked(lock.path, "run-a")


def test_threads_take_turns_and_no_close_releases_a_held_slot(tmp_path: Path) -> None:
    """Record locks belong to the process: a second thread must not drop the first's."""
    lock = SlotLockFile(tmp_path / ".compare_and_set.lock")
    order: list[str] = []
    first_holds = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with lock.held("run-a"):
            order.append("a in")
            first_holds.set()
            release_first.wait(_DEADLINE_SECONDS)
            order.append("a out")

    def second() -> None:
        with lock.held("run-b"):
            order.append("b in")

    one = threading.Thread(target=first)
    one.start()
    assert first_holds.wait(_DEADLINE_SECONDS)
    two = threading.Thread(target=second)
    two.start()
    time.sleep(0.3)
    assert _probe_locked(lock.path, "run-a")  # still held while the second thread waits
    release_first.set()
    one.join(_DEADLINE_SECONDS)
    two.join(_DEADLINE_SECONDS)
    assert order == ["a in", "a out", "b in"]
    assert not _probe_locked(lock.path, "run-a")


def test_a_symlink_in_the_lock_files_place_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / ".compare_and_set.lock"
    link.symlink_to(target)
    with pytest.raises(OSError) as raised, SlotLockFile(link).held("run-a"):
        pass
    assert raised.value.errno == errno.ELOOP
    assert target.read_text() == "keep"


def test_a_missing_directory_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), SlotLockFile(tmp_path / "no" / "x.lock").held("k"):
        pass
    assert not (tmp_path / "no").exists()


def test_slots_are_stable_across_versions_and_hosts() -> None:
    """Processes of two dpone versions sharing a directory must lock the same byte."""
    assert slot_of("r1.job_state.json") == 1_127_993_782
    assert slot_of("nightly.load_2026_11_30.job_state.json") == 495_778_574
    assert all(0 <= slot_of(f"run-{i}") < 2**31 for i in range(1000))



def test_two_spellings_of_one_lock_file_share_the_in_process_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative and an absolute path to one file: one thread's close must not drop the
    other's lock, so the second spelling waits for the first to finish."""
    monkeypatch.chdir(tmp_path)
    absolute = SlotLockFile(tmp_path / ".compare_and_set.lock")
    relative = SlotLockFile(".compare_and_set.lock")
    entered = threading.Event()
    with absolute.held("run-a"):

        def other() -> None:
            with relative.held("run-b"):
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.3)  # waits for its turn
        assert _probe_locked(absolute.path, "run-a")
    thread.join(_DEADLINE_SECONDS)
    assert entered.is_set()
