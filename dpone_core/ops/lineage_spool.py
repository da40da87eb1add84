"""Events kept on disk while the lineage server cannot take them, sent later in order.

One JSON file per event in the spool directory (default ``.dpone/lineage-spool``),
named ``<UTC stamp>_<sequence>_<pid>_<random>.json`` so that names sort in the
order the events were kept, and written durably (temp file, fsync, rename,
directory fsync) so that a spooled event survives a crash. Whoever delivers holds
the spool's OS lock (``.deliver.lock``) while it sends: spooled events go first,
each removed once the server took it, and new events queue behind them, so the
server receives every run's events in order even when two ``dpone`` processes
deliver at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpone_core.durable import atomic_write_text
from dpone_core.ops.errors import OpsInputError

__all__ = ["DEFAULT_SPOOL_DIR", "LineageSpool", "SpooledEvent"]

DEFAULT_SPOOL_DIR = ".dpone/lineage-spool"
_LOCK_NAME = ".deliver.lock"
_LOCK_TIMEOUT_SECONDS = 120.0


class SpooledEvent:
    def __init__(self, path: Path, event: dict[str, Any]) -> None:
        self.path = path
        self.event = event


class LineageSpool:
    """A directory of events waiting for the lineage server."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(os.fspath(directory))
        self._seq = 0

    def _ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OpsInputError(
                "--lineage-spool", str(self.directory), f"cannot create it: {exc.strerror or exc}"
            ) from None

    @contextmanager
    def delivering(self) -> Iterator[bool]:
        """Hold the spool's delivery lock; yields False if it could not be had in time."""
        import fasteners  # type: ignore[import-untyped]

        self._ensure()
        lock = fasteners.InterProcessLock(str(self.directory / _LOCK_NAME))
        got = lock.acquire(blocking=True, timeout=_LOCK_TIMEOUT_SECONDS)
        try:
            yield bool(got)
        finally:
            if got:
                lock.release()

    def keep(self, event: dict[str, Any]) -> Path:
        """Write ``event`` into the spool, durably, behind everything already there."""
        self._ensure()
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}_{self._seq:06d}_{os.getpid()}_{os.urandom(3).hex()}.json"
        path = self.directory / name
        atomic_write_text(path, json.dumps(event, sort_keys=True) + "\n")
        return path

    def pending(self) -> list[SpooledEvent]:
        """The spooled events, oldest first (unreadable files are skipped, left in place)."""
        try:
            names = sorted(
                n for n in os.listdir(self.directory) if n.endswith(".json") and n[0] != "."
            )
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            path = self.directory / name
            try:
                event = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(event, dict):
                found.append(SpooledEvent(path, event))
        return found

    def remove(self, spooled: SpooledEvent) -> None:
        spooled.path.unlink(missing_ok=True)
