"""The file backend's job-state store: ``<state_dir>/<run id>.job_state.json``.

One JSON file per logical run id, written atomically and fsynced. An
unreadable file is reported as corrupt and left byte-for-byte untouched:
guessing "no previous state" would re-run a load.

Every save is a compare-and-set, as in the PostgreSQL store: under a short
OS lock on ``<name>.job_state.lock`` (never held while a run executes) the
file is re-read and must still be the revision this store loaded. So two
invocations that both read "no state" (or both read ``failed``) can never both
admit an attempt, even when they use different concurrency keys.

The model and its transitions live in :mod:`dpone_core.job_state`;
``dpone_core.state`` is the documented import path of both.
"""

from __future__ import annotations

import threading
from pathlib import Path

import fasteners  # type: ignore[import-untyped]

from dpone_core.backends.protocol import BackendSettings
from dpone_core.durable import atomic_write_text
from dpone_core.errors import CorruptJobState, JobStateConflict
from dpone_core.job_state import JobState, Revision, check_successor, parse_job_state
from dpone_core.naming import file_safe_name

__all__ = ["LocalJobStateStore"]

_STATE_SUFFIX = ".job_state.json"
_LOCK_SUFFIX = ".job_state.lock"

#: One mutex per lock file in this process: POSIX record locks belong to the
#: process, so threads must take turns before the OS lock is even tried.
_MUTEXES: dict[Path, threading.Lock] = {}
_MUTEXES_GUARD = threading.Lock()


def _mutex(path: Path) -> threading.Lock:
    with _MUTEXES_GUARD:
        return _MUTEXES.setdefault(path, threading.Lock())


class LocalJobStateStore:
    """Job states as files in one directory, shared by every process (and host) using it."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        #: The revision loaded or saved last, per run id: what the next save compares to.
        self._seen: dict[str, Revision] = {}

    def path_for(self, run_id: str) -> Path:
        return self.state_dir / f"{file_safe_name(run_id)}{_STATE_SUFFIX}"

    def location(self, run_id: str) -> str:
        return str(self.path_for(run_id))

    def handoff_settings(self) -> BackendSettings:
        return BackendSettings(state_dir=str(self.state_dir))

    def close(self) -> None:
        """Nothing stays open between calls."""

    def load(self, run_id: str) -> JobState | None:
        state = self._read(self.path_for(run_id), run_id)
        self._seen[run_id] = Revision.of(state)
        return state

    def save(self, state: JobState) -> None:
        path = self.path_for(state.run_id)
        text = state.model_dump_json(indent=2) + "\n"
        lock_path = path.with_name(path.name[: -len(_STATE_SUFFIX)] + _LOCK_SUFFIX)
        with _mutex(lock_path):
            os_lock = fasteners.InterProcessLock(str(lock_path))
            try:
                os_lock.acquire()
            except FileNotFoundError:  # first write into a new state dir (no mkdir per save)
                self.state_dir.mkdir(parents=True, exist_ok=True)
                os_lock.acquire()
            try:
                self._compare(path, state)
                atomic_write_text(path, text)
            finally:
                os_lock.release()
        self._seen[state.run_id] = Revision.of(state)

    def _compare(self, path: Path, state: JobState) -> None:
        """Raise JobStateConflict unless the file is still what this store last saw."""
        try:
            current = Revision.of(self._read(path, state.run_id))
        except CorruptJobState as exc:
            self._seen.pop(state.run_id, None)
            raise JobStateConflict(f"job state of run {state.run_id!r}: {exc.reason}") from None
        expected = self._seen.get(state.run_id, current)
        if current != expected:
            self._seen.pop(state.run_id, None)  # read again before the next write
            raise JobStateConflict(
                f"job state of run {state.run_id!r} changed since it was read: expected "
                f"{expected.describe()}, found {current.describe()} ({path})"
            )
        check_successor(current, state, run_id=state.run_id)

    @staticmethod
    def _read(path: Path, run_id: str) -> JobState | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptJobState(str(path), f"unreadable ({exc.strerror})") from exc
        return parse_job_state(raw, location=str(path), run_id=run_id)
