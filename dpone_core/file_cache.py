"""A process-wide cache of things parsed from files, valid while the file is unchanged.

A Dagster code server, the Python API and a single CLI run (admission, then the
executor) load the same manifest again and again; parsing and validating it is
most of the per-run work that is not I/O. An entry is keyed by the file's
absolute path and checked against a fresh ``stat`` (device, inode, size, mtime,
ctime), so an edit, an atomic replace or a changed symlink target is a miss.

Two things a ``stat`` cannot see are handled explicitly:

* **Racy timestamps** (git's "racy clean" problem): a file rewritten with the
  same size within the file system's timestamp granularity keeps its mtime. An
  entry is only stored when the file's mtime and ctime are at least
  :data:`SETTLE_NS` older than the moment it was read, so a file that may still
  change unseen is parsed every time.
* **Inputs outside the file**: the caller passes the environment variables the
  parse depended on; a changed value is a miss.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SETTLE_NS", "FileCache"]

#: How old a file's last change must be before its parse is cached (FAT has 2 s
#: timestamps; ext4 and XFS change them at the kernel tick).
SETTLE_NS = 2_000_000_000

_StatKey = tuple[int, int, int, int, int]
T = TypeVar("T")


def _stat_key(st: os.stat_result) -> _StatKey:
    """What identifies one version of a file's content without reading it."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Entry(Generic[T]):
    key: _StatKey
    environment: tuple[tuple[str, str | None], ...]
    value: T


class FileCache(Generic[T]):
    """A bounded LRU of parsed files; thread-safe; never returns a stale parse."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, path: str, environ: Mapping[str, str] = os.environ) -> T | None:
        """The cached value for ``path`` if the file and its inputs are unchanged."""
        absolute = os.path.abspath(path)
        with self._lock:
            entry = self._entries.get(absolute)
        if entry is None:
            return None
        try:
            current = _stat_key(os.stat(absolute))
        except (OSError, ValueError):
            return None
        if current != entry.key or any(
            environ.get(name) != value for name, value in entry.environment
        ):
            return None
        with self._lock:
            if absolute in self._entries:
                self._entries.move_to_end(absolute)
        return entry.value

    def put(
        self,
        path: str,
        st: os.stat_result,
        value: T,
        env_names: Iterable[str] = (),
        environ: Mapping[str, str] = os.environ,
        now_ns: int | None = None,
    ) -> None:
        """Remember ``value`` parsed from the file whose ``fstat`` was ``st``."""
        now = time.time_ns() if now_ns is None else now_ns
        if now - max(st.st_mtime_ns, st.st_ctime_ns) < SETTLE_NS:
            return  # may still change within one timestamp tick: not safe to cache
        environment = tuple((name, environ.get(name)) for name in sorted(set(env_names)))
        absolute = os.path.abspath(path)
        with self._lock:
            self._entries[absolute] = _Entry(_stat_key(st), environment, value)
            self._entries.move_to_end(absolute)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
