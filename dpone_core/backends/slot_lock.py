"""Many short exclusive locks in one file: a POSIX record lock on one byte per key.

The file job-state store's compare-and-set needs an inter-process lock per run
id for the few microseconds of a re-read and an atomic write. A lock *file* per
run id costs a file creation for every new run id (on a busy ext4 disk a named
create is the dearest system call of an orchestrated run after ``fsync``) and
doubles the entries of the state directory that the change feed scans. Instead
every run id locks one byte of a single ``.compare_and_set.lock`` file, at an
offset chosen by a CRC of its name: two run ids that share a byte only wait
for each other briefly, and no key can ever go unlocked.

POSIX record locks belong to the process, and closing *any* descriptor of the
file drops *all* of the process's locks on it. So within a process one mutex
per lock file is held from the open to the close: threads take turns (the
critical sections are short), and no thread's close can release another's lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SlotLockFile", "slot_of"]

#: Offsets stay below 2**31 so a 32-bit ``off_t`` anywhere on the way still holds them.
_SLOTS = 1 << 31

_MUTEXES: dict[str, threading.Lock] = {}
_MUTEXES_GUARD = threading.Lock()


def _mutex(path: str) -> threading.Lock:
    with _MUTEXES_GUARD:
        return _MUTEXES.setdefault(path, threading.Lock())


def slot_of(key: str) -> int:
    """The byte of the lock file that ``key`` locks: stable across processes and hosts."""
    return zlib.crc32(key.encode("utf-8")) % _SLOTS


class SlotLockFile:
    """One lock file; :meth:`held` locks the slot of one key, blocking until it is free."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: The mutex's key: two spellings of one file (relative, through a symlinked
        #: directory) must share one mutex, or one thread's close drops another's lock.
        self._mutex_key = os.path.realpath(self.path)

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Hold ``key``'s slot; the file is created (not its directory) when missing.

        A symlink in the lock file's place is refused (``OSError``, ``ELOOP``), as
        for the concurrency locks: a lock must never be taken on a file elsewhere.
        """
        slot = slot_of(key)
        with _mutex(self._mutex_key):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX, 1, slot, os.SEEK_SET)
                try:
                    yield
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, slot, os.SEEK_SET)
            finally:
                os.close(fd)
