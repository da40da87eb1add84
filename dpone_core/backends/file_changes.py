"""Which state files changed since a cursor: the file backend's change feed.

A state file is replaced atomically on every save (written under a temporary
name, fsynced, renamed), so each save gives the file a new inode and a new
modification time. Listing changes by modification time alone would skip
states, because the time a reader sees is not the time a file appears:

* a save's modification time is taken when its bytes are written, before the
  fsync and the rename, so a slow save can appear *after* a reader already
  listed newer files;
* on a shared directory (NFS) a new entry may become visible to another host
  only after its attribute cache expires, and hosts' clocks may disagree.

So the cursor is a *high-water mark* (the newest modification time listed,
never later than the reader's own clock) plus the versions already listed
within a **margin** before it. Each call scans every file modified at or after
``high - margin``, skips the versions the cursor already holds, and lists the
rest in (modification time, file name) order. A save is therefore never
skipped unless it became visible more than ``margin`` after its bytes were
written (default five minutes: far beyond an fsync, NFS attribute caches or
NTP-disciplined clock skew).

A version is (file name, inode, modification time in ns); the cursor keeps a
72-bit digest of each, grouped by second, so it stays small (about 12 bytes a
save made within the margin) however many states the directory holds. The
cursor also names the directory it belongs to: a cursor of another store is
refused instead of silently skipping that store's history.

A scan reads every directory entry (one ``stat`` each) but holds at most one
page of candidates: paging through N states costs O(N) per page in time and
O(page) in memory, plus the cursor.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dpone_core.errors import BackendUnavailable, DponeUsageError

__all__ = [
    "CHANGE_MARGIN_SECONDS",
    "FileChangeCursor",
    "StateFileVersion",
    "scan_state_files",
]

#: How long before the newest change already listed a scan looks again.
CHANGE_MARGIN_SECONDS = 300.0

_PREFIX = "files:1:"
_NS = 1_000_000_000


@dataclass(frozen=True, order=True)
class StateFileVersion:
    """One version of one state file: what a listing returns and the cursor remembers."""

    name: str
    inode: int
    mtime_ns: int

    def digest(self) -> str:
        data = f"{self.name}\0{self.inode}\0{self.mtime_ns}".encode()
        return base64.urlsafe_b64encode(hashlib.blake2b(data, digest_size=9).digest()).decode()


@dataclass(frozen=True)
class FileChangeCursor:
    """Where a listing of one state directory stands (see the module docstring)."""

    directory: str
    margin_ns: int
    #: The newest modification time listed (capped at the reader's clock); None: nothing yet.
    high_ns: int | None = None
    #: Digests of the versions listed within the margin, by their modification second.
    seen: dict[int, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None, state_dir: Path, margin_seconds: float) -> FileChangeCursor:
        directory = str(state_dir.expanduser().resolve())
        margin_ns = int(margin_seconds * _NS)
        if text is None:
            return cls(directory, margin_ns)
        if not text.startswith(_PREFIX):
            raise DponeUsageError(
                f"change cursor {text[:40]!r} was not written by a file job-state store"
            )
        try:
            data = json.loads(text[len(_PREFIX) :])
            owner, high = str(data["dir"]), data["high"]
            seen = {
                int(second): frozenset(_chunks(str(digests)))
                for second, digests in data["seen"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DponeUsageError("change cursor of the file job-state store is damaged") from None
        if owner != directory:
            raise DponeUsageError(
                f"change cursor belongs to the job states in {owner}, not to {directory}"
            )
        return cls(directory, margin_ns, None if high is None else int(high), seen)

    @property
    def floor_ns(self) -> int | None:
        """Files modified before this are not looked at again (None: look at everything)."""
        return None if self.high_ns is None else self.high_ns - self.margin_ns

    def already_listed(self, version: StateFileVersion) -> bool:
        bucket = self.seen.get(version.mtime_ns // _NS)
        return bucket is not None and version.digest() in bucket

    def advanced(self, listed: Sequence[StateFileVersion]) -> FileChangeCursor:
        """The cursor after ``listed`` (one page, in order) was handed out."""
        high = self.high_ns
        if listed:
            newest = min(max(v.mtime_ns for v in listed), time.time_ns())
            high = newest if high is None else max(high, newest)
        if high is None:
            return self
        floor_second = (high - self.margin_ns) // _NS
        seen: dict[int, set[str]] = {s: set(d) for s, d in self.seen.items() if s >= floor_second}
        for version in listed:
            second = version.mtime_ns // _NS
            if second >= floor_second:
                seen.setdefault(second, set()).add(version.digest())
        frozen = {s: frozenset(d) for s, d in seen.items()}
        return FileChangeCursor(self.directory, self.margin_ns, high, frozen)

    def dump(self) -> str:
        data = {
            "dir": self.directory,
            "high": self.high_ns,
            "seen": {str(s): "".join(sorted(d)) for s, d in sorted(self.seen.items())},
        }
        return _PREFIX + json.dumps(data, separators=(",", ":"))


def _chunks(digests: str) -> Iterator[str]:
    size = 12  # 9 bytes in URL-safe base64
    if len(digests) % size:
        raise ValueError("damaged digest list")
    return (digests[i : i + size] for i in range(0, len(digests), size))


def scan_state_files(
    state_dir: Path, suffix: str, cursor: FileChangeCursor, limit: int
) -> tuple[list[StateFileVersion], bool]:
    """The first ``limit`` unlisted versions at or after the cursor's floor, oldest first,
    and whether there were more."""
    ordered = heapq.nsmallest(
        limit + 1,
        _candidates(state_dir, suffix, cursor),
        key=lambda v: (v.mtime_ns, v.name),
    )
    return ordered[:limit], len(ordered) > limit


def _candidates(
    state_dir: Path, suffix: str, cursor: FileChangeCursor
) -> Iterator[StateFileVersion]:
    floor = cursor.floor_ns
    try:
        entries = os.scandir(state_dir)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot list the job states in {state_dir}: {exc.strerror or exc}"
        ) from None
    with entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.endswith(suffix):
                continue  # temporary files of a save in progress, lock files
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # replaced or removed since the directory was read
            except OSError:
                if floor is None:  # reading it fails too: listed as unreadable, by full scans
                    yield StateFileVersion(name, 0, 0)
                continue
            if floor is not None and stat.st_mtime_ns < floor:
                continue
            version = StateFileVersion(name, stat.st_ino, stat.st_mtime_ns)
            if not cursor.already_listed(version):
                yield version
