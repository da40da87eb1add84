"""Per-key concurrency locks: one live execution per key, ever.

Two files per key live in the lock directory:

``<name>.lock``
    Only ever opened through one ``fasteners.InterProcessLock`` and never
    deleted. On Linux that is a POSIX record lock (``fcntl.lockf``), which the
    kernel drops the moment its owner dies, so a ``kill -9``-ed holder frees
    its key at once, and which never expires while the owner lives, so a
    long run keeps its key past any TTL. Such a lock also vanishes when the
    owning process closes *any* descriptor of the file, hence the rule that
    nothing else opens it (``inspect`` included) and deleting it is never an
    option (a contender could lock an unlinked inode while another locks the
    new file).

``<name>.lock.json``
    The holder record (:class:`LockHolder`) that says who holds the key, for
    operators and for hosts that share the directory over a network
    filesystem. Only the process holding the OS lock writes it (atomically),
    so replacing a stale record is race-free: of N contenders exactly one
    wins. A record this code cannot read is refused as ``lock.corrupt`` and
    left byte-for-byte untouched, because guessing would mean overwriting
    evidence of a holder we know nothing about.

POSIX record locks belong to a process, not to a thread: a second thread of
the holder's process would "acquire" the same lock again and, on failure or
release, could close a descriptor and silently drop the holder's lock. A
process-wide registry therefore refuses keys this process already holds
before anything touches the ``.lock`` file.

**Pruning** (``dpone orchestrate locks --prune``) is the one exception to
"never deleted", made safe by a check every acquirer does: after the OS lock
is granted, the descriptor's inode must still be the one the path names
(``fstat`` vs ``lstat``); if not, the acquirer locked a pruned inode, lets it
go and opens the path again. The pruner unlinks a ``.lock`` file only while
holding its OS lock *and* after the same check. So whoever holds a verified
lock holds the inode the path names, and the path cannot change under it:
only a pruner unlinks, and a pruner must first hold that very lock. An
acquirer that opened the old inode before the unlink either fails to lock it
(the pruner holds it) or locks it afterwards and fails the check. The record
goes first, then the lock file, both under the lock; a crash in between leaves
a free key either way. dpone releases from before ``locks --prune`` existed do
not verify and must not share a directory that is being pruned.

Lock files are never followed through symbolic links: the ``.lock`` file is
opened with ``O_NOFOLLOW`` and must be a regular file, otherwise the key is
refused as ``lock.corrupt`` and the path is left alone; records are read the
same way.

A record written by another host cannot be checked by pid, so a heartbeat
thread keeps ``heartbeat_at`` fresh and the TTL retires only records whose
heartbeat stopped. Cross-host exclusion while both hosts are alive relies on
the shared filesystem honouring ``fcntl`` locks (NFSv4 does).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import fasteners  # type: ignore[import-untyped]
from pydantic import ValidationError

from dpone_core.backends.lease import checked_ttl, heartbeat_interval
from dpone_core.backends.protocol import (
    BackendSettings,
    HeldLockMixin,
    LockAcquisition,
    LockHolder,
    LockState,
    LockStatus,
)
from dpone_core.blockers import LOCK_CONCURRENT_RUN, LOCK_CORRUPT
from dpone_core.clock import utc_now_iso
from dpone_core.defaults import LOCK_TTL_SECONDS
from dpone_core.durable import atomic_write_text
from dpone_core.errors import DponeError, OrchestrationBackendError
from dpone_core.liveness import local_process_alive, pid_start_time
from dpone_core.naming import file_safe_name

__all__ = ["LocalRunLockManager", "RunLock"]

_RECORD_SUFFIX = ".lock.json"
_OS_LOCK_SUFFIX = ".lock"
_MAX_HEARTBEAT_INTERVAL = 30.0

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# Process-wide registry of held keys
# --------------------------------------------------------------------------

_RegistryKey = tuple[int, int, str]


class _ProcessRegistry:
    """Keys (by lock file identity) that this process holds or is acquiring."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: set[_RegistryKey] = set()

    def reserve(self, key: _RegistryKey) -> bool:
        with self._mutex:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def discard(self, key: _RegistryKey) -> None:
        with self._mutex:
            self._held.discard(key)

    def reset_after_fork(self) -> None:
        # A forked child owns none of its parent's record locks (they are not
        # inherited), and the mutex may have been held by a thread that does
        # not exist in the child. Contending from the child is safe: the
        # parent's lock refuses it, and closing the child's descriptor cannot
        # drop a lock the child never owned.
        self._mutex = threading.Lock()
        self._held = set()


_REGISTRY = _ProcessRegistry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_REGISTRY.reset_after_fork)


class _UnsafeLockFile(DponeError):
    """The ``.lock`` path is a symlink or not a regular file: refused, left alone."""


#: Open flags of lock files and records: never through a symlink, never block on a FIFO.
_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class _NoFollowInterProcessLock(fasteners.InterProcessLock):  # type: ignore[misc]
    """fasteners' lock, opening its file without following symlinks or creating directories."""

    def _do_open(self) -> None:
        current: Any = getattr(self, "lockfile", None)
        if current is not None and not current.closed:
            return
        path = os.fsdecode(self.path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO without reader
                raise _UnsafeLockFile(_unsafe_message(path)) from None
            raise OSError(exc.errno, exc.strerror, path) from None  # str, never b'...'
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _UnsafeLockFile(_unsafe_message(path))
        self.lockfile = os.fdopen(fd, "a")


def _unsafe_message(path: str) -> str:
    kind = "a symbolic link" if os.path.islink(path) else "not a regular file"
    return (
        f"the lock file {path} is {kind}; it was left untouched (a lock file is never "
        "followed or replaced), so check why it is there, then remove it"
    )


class _OsLock:
    """A typed wrapper over the one ``InterProcessLock`` allowed to touch a ``.lock`` file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock: Any = _NoFollowInterProcessLock(str(path))

    def try_acquire(self) -> bool:
        """Lock without blocking; raises :class:`_UnsafeLockFile` for a symlink or non-file."""
        try:
            acquired = bool(self._lock.acquire(blocking=False))
        except threading.ThreadError as exc:  # fasteners' wrapper of an unexpected lockf error
            self._close_unheld()
            cause = exc.__context__
            why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "failed"
            raise OrchestrationBackendError(f"cannot lock {self._path}: {why}") from None
        except BaseException:
            self._close_unheld()
            raise
        if not acquired:
            self._close_unheld()
        return acquired

    def names_path(self) -> bool:
        """Whether the locked inode is still the one the path names (see the module doc)."""
        lockfile = self._lock.lockfile
        try:
            held = os.fstat(lockfile.fileno())
            current = os.lstat(self._path)
        except (OSError, AttributeError, ValueError):
            return False
        return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)

    def release(self) -> None:
        self._lock.release()

    def _close_unheld(self) -> None:
        # fasteners leaves the file open after a failed non-blocking attempt;
        # close it now (safe: this process does not hold this key's lock,
        # the registry guarantees that) rather than whenever GC runs.
        lockfile = getattr(self._lock, "lockfile", None)
        if lockfile is not None:
            with contextlib.suppress(OSError):
                lockfile.close()
            self._lock.lockfile = None


#: How often an acquirer re-opens a lock file that a prune unlinked under it.
_PRUNED_RETRIES = 5


def _lock_verified(path: Path) -> _OsLock | None:
    """The key's OS lock, held and verified to name ``path``; None when someone holds it."""
    for _ in range(_PRUNED_RETRIES):
        os_lock = _OsLock(path)
        if not os_lock.try_acquire():
            return None
        if os_lock.names_path():
            return os_lock
        os_lock.release()  # we locked an inode a prune unlinked: open the path again
    return None


# --------------------------------------------------------------------------
# Holder records
# --------------------------------------------------------------------------


class _CorruptRecord(DponeError):
    pass


#: A holder record is a few hundred bytes; anything much larger is not one.
_MAX_RECORD_BYTES = 64 * 1024


def _read_bytes_nofollow(path: Path) -> bytes | None:
    """A record's bytes (None if absent), never through a symlink, from a regular file only."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _CorruptRecord("is a symbolic link (never followed)") from None
        raise _CorruptRecord(f"cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _CorruptRecord("is not a regular file")
        data = os.read(fd, _MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise _CorruptRecord(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_RECORD_BYTES:
        raise _CorruptRecord(f"is larger than {_MAX_RECORD_BYTES} bytes")
    return data


def _read_record(path: Path, expected_key: str | None) -> LockHolder | None:
    """Return the record, None if there is none, or raise :class:`_CorruptRecord`."""
    data = _read_bytes_nofollow(path)
    if data is None:
        return None
    try:
        holder = LockHolder.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        raise _CorruptRecord(f"is not a valid holder record ({detail})") from exc
    if expected_key is not None and holder.key != expected_key:
        raise _CorruptRecord(f"names key {holder.key!r}, not {expected_key!r}")
    return holder


def _write_record(path: Path, holder: LockHolder) -> None:
    # Atomic but not fsynced: a record matters only while its holder's OS lock
    # lives, and a machine crash ends every OS lock; a record lost or left stale
    # by that crash reads as "free", which is then the truth.
    atomic_write_text(path, holder.model_dump_json(indent=2) + "\n", durable=False)


def _key_from_stem(stem: str) -> str:
    if "~" in stem:  # long keys are stored as prefix~sha256 and cannot be decoded
        return stem
    return unquote(stem, errors="replace")


# --------------------------------------------------------------------------
# The handle
# --------------------------------------------------------------------------


class _Heartbeats:
    """One daemon thread that refreshes every held lock of this process.

    A thread per lock would cost its start-up (~0.7 ms) on every acquire; one
    shared thread sleeps until the next lock is due. It is (re)started lazily,
    also in a forked child, whose copy of the parent's thread does not exist.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[RunLock, float] = {}
        self._thread_pid: int | None = None

    def add(self, lock: RunLock) -> None:
        with self._cond:
            if self._thread_pid != os.getpid():
                self._due.clear()
                thread = threading.Thread(
                    target=self._run, name="dpone-lock-heartbeats", daemon=True
                )
                thread.start()
                self._thread_pid = os.getpid()
            self._due[lock] = time.monotonic() + lock.heartbeat_interval
            self._cond.notify()

    def remove(self, lock: RunLock) -> None:
        with self._cond:
            self._due.pop(lock, None)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._due:
                    self._cond.wait()
                    continue
                lock, when = min(self._due.items(), key=lambda item: item[1])
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                self._due[lock] = time.monotonic() + lock.heartbeat_interval
            if not lock._heartbeat_once():
                self.remove(lock)


_HEARTBEATS = _Heartbeats()


class RunLock(HeldLockMixin):
    """A held key of the file backend (a :class:`HeldLock`). Release it (or use ``with``).

    Made by :meth:`LocalRunLockManager.acquire`, not directly. The heartbeat
    scheduler keeps a reference to the handle, so an unreleased lock stays
    held until the process exits instead of being dropped silently by GC.
    """

    def __init__(
        self,
        *,
        holder: LockHolder,
        record_path: Path,
        os_lock: _OsLock,
        registry_key: _RegistryKey,
        heartbeat_interval: float,
    ) -> None:
        self._holder = holder
        self._record_path = record_path
        self._os_lock = os_lock
        self._registry_key = registry_key
        self._interval = heartbeat_interval
        self._owner_pid = os.getpid()
        # Serialises heartbeat writes with release, so a beat can never
        # re-create the record after release removed it.
        self._mutex = threading.Lock()
        self._released = False
        _HEARTBEATS.add(self)

    @property
    def holder(self) -> LockHolder:
        """The record as last written by us (``heartbeat_at`` advances)."""
        return self._holder

    @property
    def record_path(self) -> Path:
        return self._record_path

    @property
    def released(self) -> bool:
        return self._released

    @property
    def lost_reason(self) -> None:
        """Always None: an OS lock cannot be lost while its process lives."""
        return None

    @property
    def heartbeat_interval(self) -> float:
        return self._interval

    def _heartbeat_once(self) -> bool:
        """One beat, serialised with release; False means stop beating this lock."""
        with self._mutex:
            if self._released:
                return False
            try:
                return self._beat()
            except OSError as exc:  # a transient filesystem error must not end the beats
                _log.warning("lock heartbeat for key %r failed: %s", self.key, exc)
                return True

    def _beat(self) -> bool:
        """Refresh ``heartbeat_at`` if the record is still ours; False stops the beats.

        A missing, corrupt or foreign record is left alone: writing it would
        resurrect a record someone deliberately retired or replaced.
        """
        try:
            current = _read_record(self._record_path, self.key)
        except _CorruptRecord as exc:
            _log.warning("lock heartbeat for key %r stopped: record %s", self.key, exc)
            return False
        if current is None or current.token != self.token:
            _log.warning(
                "lock heartbeat for key %r stopped: the record is no longer ours", self.key
            )
            return False
        updated = self._holder.model_copy(update={"heartbeat_at": utc_now_iso()})
        _write_record(self._record_path, updated)
        self._holder = updated
        return True

    def release(self) -> None:
        """Give the key back; safe to call twice.

        The record goes only if its token is ours (never a successor's), and
        it goes before the OS lock, so nobody sees our record after the key
        is free. In a forked child this does nothing: the lock is the parent's.
        """
        with self._mutex:
            if self._released:
                return
            self._released = True
            _HEARTBEATS.remove(self)
            if os.getpid() != self._owner_pid:
                return
            try:
                try:
                    current = _read_record(self._record_path, self.key)
                except _CorruptRecord:
                    current = None
                if current is not None and current.token == self.token:
                    self._record_path.unlink(missing_ok=True)
            finally:
                try:
                    self._os_lock.release()
                finally:
                    _REGISTRY.discard(self._registry_key)



# --------------------------------------------------------------------------
# The local manager
# --------------------------------------------------------------------------


class LocalRunLockManager:
    """File-based locks in one directory, shared by every process (and host) using it."""

    def __init__(
        self,
        lock_dir: str | Path,
        ttl_seconds: float = LOCK_TTL_SECONDS,
        *,
        host: str | None = None,
    ) -> None:
        self.lock_dir = Path(lock_dir)
        self.ttl_seconds = checked_ttl(ttl_seconds)
        #: Records carrying this host are checked by pid; others by heartbeat.
        self.host = host or socket.gethostname()

    @property
    def heartbeat_interval(self) -> float:
        return heartbeat_interval(self.ttl_seconds, cap_seconds=_MAX_HEARTBEAT_INTERVAL)

    def handoff_settings(self) -> BackendSettings:
        return BackendSettings(lock_dir=str(self.lock_dir), lock_ttl_seconds=self.ttl_seconds)

    def record_path(self, key: str) -> Path:
        return self.lock_dir / f"{self._name(key)}{_RECORD_SUFFIX}"

    @staticmethod
    def _name(key: str) -> str:
        if not key:
            raise ValueError("empty key: a concurrency key must be a non-empty string")
        return file_safe_name(key)

    def _registry_key(self, name: str) -> _RegistryKey:
        # Directory identity, not its spelling: two managers reaching one
        # directory through different paths must share the registry entry.
        try:
            st = os.stat(self.lock_dir)
        except FileNotFoundError:  # created on first use, not on every acquire
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            st = os.stat(self.lock_dir)
        return (st.st_dev, st.st_ino, name)

    def holder_alive(self, holder: LockHolder) -> bool | None:
        """Same host: by pid and start time. Other host: by heartbeat age against the TTL."""
        if holder.host == self.host:
            return local_process_alive(holder.pid, holder.pid_start_time)
        return holder.heartbeat_age_seconds() <= self.ttl_seconds

    def is_held(self, key: str, token: str) -> bool | None:
        try:
            holder = _read_record(self.record_path(key), key)
        except _CorruptRecord:
            return None  # cannot tell: maybe alive
        if holder is None or holder.token != token:
            return False
        return self.holder_alive(holder)

    def acquire(self, key: str, *, run_id: str) -> LockAcquisition:
        name = self._name(key)
        record_path = self.lock_dir / f"{name}{_RECORD_SUFFIX}"
        registry_key = self._registry_key(name)

        if not _REGISTRY.reserve(registry_key):
            holder = self._peek(record_path, key)
            who = holder.describe() if holder is not None else "a run"
            return self._refused(
                LOCK_CONCURRENT_RUN,
                holder,
                f"key {key!r} is held by {who} in another thread of this process",
            )

        try:
            os_lock = _lock_verified(self.lock_dir / f"{name}{_OS_LOCK_SUFFIX}")
        except _UnsafeLockFile as exc:
            _REGISTRY.discard(registry_key)
            return self._refused(LOCK_CORRUPT, None, f"key {key!r}: {exc}")
        except BaseException:
            _REGISTRY.discard(registry_key)
            raise
        if os_lock is None:
            _REGISTRY.discard(registry_key)
            holder = self._peek(record_path, key)
            if holder is not None:
                message = f"key {key!r} is held by {holder.describe()}"
            else:
                message = (
                    f"key {key!r} is held by another process (its holder record is not readable)"
                )
            return self._refused(LOCK_CONCURRENT_RUN, holder, message)

        try:
            outcome = self._admit(key, run_id, record_path, os_lock, registry_key)
        except BaseException:
            try:
                os_lock.release()
            finally:
                _REGISTRY.discard(registry_key)
            raise
        if not outcome.acquired:
            try:
                os_lock.release()
            finally:
                _REGISTRY.discard(registry_key)
        return outcome

    def _admit(
        self,
        key: str,
        run_id: str,
        record_path: Path,
        os_lock: _OsLock,
        registry_key: _RegistryKey,
    ) -> LockAcquisition:
        """Decide under the OS lock: we are the only writer of this key's record now."""
        try:
            previous = _read_record(record_path, key)
        except _CorruptRecord as exc:
            return self._refused(
                LOCK_CORRUPT,
                None,
                f"the holder record for key {key!r} at {record_path} {exc}; it was left "
                "untouched, so check that no run uses the key, then move it aside",
            )

        if previous is not None and previous.host != self.host:
            age = previous.heartbeat_age_seconds()
            if age <= self.ttl_seconds:
                return self._refused(
                    LOCK_CONCURRENT_RUN,
                    previous,
                    f"key {key!r} is held by {previous.describe()}; its last heartbeat was "
                    f"{age:.0f} s ago, within the {self.ttl_seconds:g} s TTL",
                )
        # Same host: we hold the OS lock, so the recorded holder no longer
        # does: it is dead. Other host: its heartbeat stopped past the TTL.

        now = utc_now_iso()
        pid = os.getpid()
        holder = LockHolder(
            key=key,
            run_id=run_id,
            pid=pid,
            host=self.host,
            acquired_at=now,
            heartbeat_at=now,
            token=secrets.token_hex(16),
            pid_start_time=pid_start_time(pid),
        )
        _write_record(record_path, holder)
        lock = RunLock(
            holder=holder,
            record_path=record_path,
            os_lock=os_lock,
            registry_key=registry_key,
            heartbeat_interval=self.heartbeat_interval,
        )
        if previous is None:
            message = f"acquired key {key!r} for run {run_id}"
        else:
            why = (
                "its process is gone"
                if previous.host == self.host
                else f"its heartbeat is older than the {self.ttl_seconds:g} s TTL"
            )
            message = (
                f"acquired key {key!r} for run {run_id}, replacing the stale record of "
                f"{previous.describe()} because {why}"
            )
        return LockAcquisition(
            acquired=True,
            lock=lock,
            blocker=None,
            holder=holder,
            message=message,
            stale_lock_replaced=previous is not None,
            replaced_holder=previous,
        )

    @staticmethod
    def _peek(record_path: Path, key: str) -> LockHolder | None:
        """Best-effort read for a refusal message (the holder may be mid-write)."""
        try:
            return _read_record(record_path, key)
        except _CorruptRecord:
            return None

    @staticmethod
    def _refused(blocker: str, holder: LockHolder | None, message: str) -> LockAcquisition:
        return LockAcquisition(
            acquired=False, lock=None, blocker=blocker, holder=holder, message=message
        )

    def _listing(self) -> list[str]:
        """File names in the lock directory; [] if it does not exist, else one clear error."""
        try:
            return sorted(os.listdir(self.lock_dir))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OrchestrationBackendError(
                f"lock directory {self.lock_dir}: cannot be listed "
                f"({exc.strerror or type(exc).__name__}); expected a readable directory"
            ) from None

    def inspect(self) -> list[LockStatus]:
        """Every holder record in the directory, judged without touching any OS lock.

        A holder whose liveness cannot be told is reported ``held``: only a
        provably dead (or heartbeat-expired) holder is ``stale``. A directory
        that exists but cannot be listed raises ``OrchestrationBackendError``.
        """
        statuses: list[LockStatus] = []
        for file_name in self._listing():
            if not file_name.endswith(_RECORD_SUFFIX) or file_name.startswith("."):
                continue
            path = self.lock_dir / file_name
            stem = file_name[: -len(_RECORD_SUFFIX)]
            try:
                holder = _read_record(path, None)
            except _CorruptRecord:
                statuses.append(LockStatus(_key_from_stem(stem), None, "corrupt", str(path)))
                continue
            if holder is None:  # released between listing and reading
                continue
            if file_safe_name(holder.key) != stem:
                statuses.append(LockStatus(_key_from_stem(stem), None, "corrupt", str(path)))
                continue
            alive = self.holder_alive(holder)
            state: LockState = "stale" if alive is False else "held"
            statuses.append(LockStatus(holder.key, holder, state, str(path)))
        return statuses

    def prune(self) -> list[str]:
        """Delete the files of every key that is provably free now; return their keys.

        A key is pruned only while this process holds its verified OS lock and
        no live record names it (a record of another host within the TTL
        counts as live, as in :meth:`acquire`; a corrupt record or an unsafe
        lock file keeps the key). The record goes first, then the lock file,
        then the lock is released: the module docstring explains why an
        acquirer racing with this can never share the key.
        """
        names: set[str] = set()
        for file_name in self._listing():
            if file_name.startswith("."):  # temporary files of atomic writes
                continue
            for suffix in (_RECORD_SUFFIX, _OS_LOCK_SUFFIX):
                if file_name.endswith(suffix) and len(file_name) > len(suffix):
                    names.add(file_name[: -len(suffix)])
                    break
        return [_key_from_stem(name) for name in sorted(names) if self._prune_one(name)]

    def _prune_one(self, name: str) -> bool:
        registry_key = self._registry_key(name)
        if not _REGISTRY.reserve(registry_key):
            return False  # held by a thread of this process
        try:
            try:
                os_lock = _lock_verified(self.lock_dir / f"{name}{_OS_LOCK_SUFFIX}")
            except _UnsafeLockFile:
                return False
            if os_lock is None:
                return False
            try:
                return self._delete_if_free(name, os_lock)
            finally:
                os_lock.release()
        finally:
            _REGISTRY.discard(registry_key)

    def _delete_if_free(self, name: str, os_lock: _OsLock) -> bool:
        record_path = self.lock_dir / f"{name}{_RECORD_SUFFIX}"
        try:
            previous = _read_record(record_path, None)
        except _CorruptRecord:
            return False  # evidence of a holder we know nothing about: left alone
        if previous is not None and (
            file_safe_name(previous.key) != name
            or (previous.host != self.host and self.holder_alive(previous) is not False)
        ):
            return False
        if not os_lock.names_path():
            return False
        record_path.unlink(missing_ok=True)
        (self.lock_dir / f"{name}{_OS_LOCK_SUFFIX}").unlink(missing_ok=True)
        return True
