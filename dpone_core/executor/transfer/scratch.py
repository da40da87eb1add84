"""SQLite scratch files: where staging tables for existing SQLite targets live.

A staging table inside the target file would leave the file larger by the size
of every load (its pages go to the freelist when it is dropped) and cost a
page-by-page ``DROP``. Instead, a load into an existing SQLite table stages in a
scratch database next to the target, ``<target file>.dpone-stg-<24 hex of the
load id>``, attached to the target connection as ``dpone_stage`` with
``journal_mode=OFF`` and ``synchronous=OFF``: it holds nothing that must
survive a crash, because the load's transaction on the target file either
commits (after which the scratch file is deleted) or rolls back (after which
the staged rows are worthless). The publish ``INSERT INTO main.target SELECT *
FROM dpone_stage.staging`` still runs inside the target's one transaction.

A crash leaves the scratch file behind; the next load into the same target
deletes every leftover before it starts. (Deleting the file of a load that is
still running is harmless on POSIX systems: it keeps its open file.) A target
that does not exist yet is staged inside the target file instead and renamed
into place, which writes its rows once.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.staging import staging_name

__all__ = [
    "SCRATCH_SCHEMA",
    "attach_scratch",
    "detach_scratch",
    "remove_leftover_scratch",
    "scratch_path",
]

SCRATCH_SCHEMA = "dpone_stage"
_SUFFIX = ".dpone-stg-"


def scratch_path(target_path: str, load_id: str) -> str:
    return target_path + _SUFFIX + staging_name(load_id).rsplit("_", 1)[-1]


def _remove(path: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.remove(path + suffix)


def _file_target(db: Endpoint) -> str | None:
    path = db.sqlite_path
    if not db.dialect.scratch_staging or not db.is_file or path is None:
        return None
    return None if path.startswith("file:") else path


def remove_leftover_scratch(db: Endpoint) -> None:
    """Delete scratch files that crashed loads left next to a SQLite target."""
    path = _file_target(db)
    if path is not None:
        for leftover in glob.glob(glob.escape(path + _SUFFIX) + "*"):
            _remove(leftover)


def attach_scratch(db: Endpoint, load_id: str) -> str | None:
    """Attach a fresh scratch file to a file-backed SQLite target; None when not applicable."""
    path = _file_target(db)
    if path is None:
        return None
    remove_leftover_scratch(db)
    scratch = scratch_path(path, load_id)
    conn = db.sqlite
    conn.execute(f"ATTACH DATABASE ? AS {db.quote(SCRATCH_SCHEMA)}", (Path(scratch).as_uri(),))
    conn.execute(f"PRAGMA {db.quote(SCRATCH_SCHEMA)}.journal_mode = OFF")
    conn.execute(f"PRAGMA {db.quote(SCRATCH_SCHEMA)}.synchronous = OFF")
    return scratch


def detach_scratch(db: Endpoint, scratch: str) -> None:
    """Detach (rolling back an open transaction first) and delete the scratch file."""
    with contextlib.suppress(Exception):
        conn = db.sqlite
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        names = [str(row[1]) for row in conn.execute("PRAGMA database_list").fetchall()]
        if SCRATCH_SCHEMA in names:
            conn.execute(f"DETACH DATABASE {db.quote(SCRATCH_SCHEMA)}")
    _remove(scratch)
