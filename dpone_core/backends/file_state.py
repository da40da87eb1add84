"""The file backend's job-state store: ``<state_dir>/<run id>.job_state.json``.

One JSON file per logical run id, written atomically and fsynced. An
unreadable file is reported as corrupt and left byte-for-byte untouched:
guessing "no previous state" would re-run a load.

Every save is a compare-and-set, as in the PostgreSQL store: under a short
OS lock on the run id's byte of ``.compare_and_set.lock`` (one file per state
directory, see :mod:`dpone_core.backends.slot_lock`; never held while a run
executes) the file is re-read and must still be the revision this store loaded. So two
invocations that both read "no state" (or both read ``failed``) can never both
admit an attempt, even when they use different concurrency keys.

Changes are listed (:meth:`LocalJobStateStore.changed_since`) by modification
time: see :mod:`dpone_core.backends.file_changes` for the cursor and why it
never skips a state.

The model and its transitions live in :mod:`dpone_core.job_state`;
``dpone_core.state`` is the documented import path of both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dpone_core.backends.file_changes import (
    CHANGE_MARGIN_SECONDS,
    FileChangeCursor,
    StateFileVersion,
    scan_state_files,
)
from dpone_core.backends.protocol import BackendSettings, JobStateChanges, UnreadableJobState
from dpone_core.backends.slot_lock import SlotLockFile
from dpone_core.durable import atomic_write_text
from dpone_core.errors import CorruptJobState, JobStateConflict
from dpone_core.job_state import JobState, Revision, check_successor, parse_job_state
from dpone_core.naming import file_safe_name

__all__ = ["LocalJobStateStore"]

_STATE_SUFFIX = ".job_state.json"
#: The compare-and-set lock of every run id of the directory (one byte each).
COMPARE_AND_SET_LOCK = ".compare_and_set.lock"


class LocalJobStateStore:
    """Job states as files in one directory, shared by every process (and host) using it."""

    def __init__(
        self, state_dir: str | Path, *, change_margin_seconds: float = CHANGE_MARGIN_SECONDS
    ) -> None:
        self.state_dir = Path(state_dir)
        #: How far before the newest change already listed :meth:`changed_since` looks
        #: again (see :mod:`dpone_core.backends.file_changes`).
        self.change_margin_seconds = change_margin_seconds
        #: The revision loaded or saved last, per run id: what the next save compares to.
        self._seen: dict[str, Revision] = {}
        self._cas_lock = SlotLockFile(self.state_dir / COMPARE_AND_SET_LOCK)

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
        try:
            self._compare_and_write(path, state, text)
        except FileNotFoundError:
            if self.state_dir.is_dir():
                raise
            # The first write into a new state dir: no mkdir on every save.
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._compare_and_write(path, state, text)
        self._seen[state.run_id] = Revision.of(state)

    def _compare_and_write(self, path: Path, state: JobState, text: str) -> None:
        with self._cas_lock.held(path.name):
            self._compare(path, state)
            atomic_write_text(path, text)

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

    def changed_since(self, cursor: str | None, limit: int) -> JobStateChanges:
        """States whose file changed after ``cursor``, by (modification time, file name)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        position = FileChangeCursor.parse(cursor, self.state_dir, self.change_margin_seconds)
        candidates, more = scan_state_files(self.state_dir, _STATE_SUFFIX, position, limit)
        states: list[JobState] = []
        unreadable: list[UnreadableJobState] = []
        listed: list[StateFileVersion] = []
        for candidate in candidates:
            path = self.state_dir / candidate.name
            try:
                version, state = self._read_listed(path, candidate)
            except FileNotFoundError:
                continue  # removed since the scan: nothing to list
            except CorruptJobState as exc:
                unreadable.append(UnreadableJobState(location=exc.path, reason=exc.reason))
                version = candidate
            else:
                states.append(state)
            listed.append(version)
        return JobStateChanges(
            states=states,
            unreadable=unreadable,
            cursor=position.advanced(listed).dump(),
            more=more,
        )

    def _read_listed(
        self, path: Path, candidate: StateFileVersion
    ) -> tuple[StateFileVersion, JobState]:
        """The state in ``path`` and the version (inode, mtime) of exactly the bytes read."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptJobState(str(path), f"unreadable ({exc.strerror})") from exc
        try:
            with os.fdopen(fd, "rb") as file:
                stat = os.fstat(file.fileno())
                raw = file.read()
        except OSError as exc:
            raise CorruptJobState(str(path), f"unreadable ({exc.strerror})") from exc
        version = StateFileVersion(candidate.name, stat.st_ino, stat.st_mtime_ns)
        return version, self._parse_listed(path, raw)

    def _parse_listed(self, path: Path, raw: bytes) -> JobState:
        """Parse a listed file, whose run id is only known from its content."""
        try:
            document = json.loads(raw)
        except ValueError:
            raise CorruptJobState(str(path), "not valid JSON") from None
        run_id = document.get("run_id") if isinstance(document, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise CorruptJobState(str(path), "not a valid job state (run_id: missing)")
        if self.path_for(run_id).name != path.name:
            belongs = self.path_for(run_id)
            raise CorruptJobState(str(path), f"holds run id {run_id!r}, whose state is {belongs}")
        return parse_job_state(document, location=str(path), run_id=run_id)

    @staticmethod
    def _read(path: Path, run_id: str) -> JobState | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptJobState(str(path), f"unreadable ({exc.strerror})") from exc
        return parse_job_state(raw, location=str(path), run_id=run_id)
