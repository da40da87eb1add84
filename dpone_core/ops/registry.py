"""Where registry entries live: the :class:`RunRegistry` protocol and the file store.

Both stores (this one and :class:`~dpone_core.backends.postgres_registry.PostgresRunRegistry`
behind :func:`~dpone_core.ops.registry_select.open_registry`) promise the same:

- ``register(entry)`` stores the entry of a run id and attempt **once**. The
  same content again (same fingerprint) is a no-op that returns the stored entry;
  different content raises :class:`~dpone_core.ops.errors.RegistryConflict` and
  writes nothing. Of several registrations racing for one run id and attempt,
  exactly one writes.
- ``get(run_id, attempt=None)`` returns that attempt's entry, or the latest.
- ``list_entries(query)`` returns the entries a query selects, plus a line per
  stored entry that could not be read (a corrupt entry never hides the others).

**The file store** writes ``<registry dir>/<run id>__run_registry.json``
(:func:`~dpone_core.ops.entry.entry_file_name`): the entry goes to a temporary
file in the same directory, is fsynced, then *hard-linked* to its name (a link
never replaces an existing file, unlike a rename, so two writers cannot both
win), the directory is fsynced and the temporary name removed. A reader sees a
complete entry or none. Entries are checked against their fingerprint when read,
so one edited by hand is reported as corrupt rather than trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from dpone_core.durable import fsync_dir
from dpone_core.naming import file_safe_name
from dpone_core.ops.entry import (
    ENTRY_SUFFIX,
    RegistryEntry,
    RegistryQuery,
    differences,
    entry_file_name,
    fingerprint_of,
    select_entries,
)
from dpone_core.ops.errors import CorruptRegistryEntry, OpsInputError, RegistryConflict

__all__ = [
    "FileRunRegistry",
    "Registration",
    "RegistryListing",
    "RunRegistry",
    "check_stored",
    "entry_json",
    "parse_entry",
]

MAX_ENTRY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Registration:
    """What ``register`` did: ``created`` False means the same entry was already there."""

    entry: RegistryEntry
    location: str
    created: bool


@dataclass
class RegistryListing:
    entries: list[RegistryEntry]
    #: One line per stored entry that could not be read (location: reason).
    problems: list[str] = field(default_factory=list)


class RunRegistry(Protocol):
    """A registry of run entries (files or PostgreSQL)."""

    def register(self, entry: RegistryEntry) -> Registration: ...

    def get(self, run_id: str, attempt: int | None = None) -> RegistryEntry | None: ...

    def list_entries(self, query: RegistryQuery) -> RegistryListing: ...

    def location(self, run_id: str, attempt: int) -> str: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def entry_json(entry: RegistryEntry) -> str:
    return json.dumps(entry.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def parse_entry(data: bytes | str, location: str) -> RegistryEntry:
    """A stored entry, checked against its fingerprint; :class:`CorruptRegistryEntry` if not."""
    try:
        entry = RegistryEntry.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CorruptRegistryEntry(location, f"{where}: {first['msg']}") from None
    if fingerprint_of(entry) != entry.fingerprint:
        raise CorruptRegistryEntry(
            location, "its content does not match its fingerprint (changed after registration)"
        )
    return entry


def check_stored(stored: RegistryEntry, new: RegistryEntry, location: str) -> Registration:
    """The registration of ``new`` where ``stored`` already is: a no-op, or a conflict."""
    if stored.fingerprint == new.fingerprint:
        return Registration(entry=stored, location=location, created=False)
    raise RegistryConflict(
        new.run_id, new.attempt, location, "differs in " + ", ".join(differences(stored, new))
    )


class FileRunRegistry:
    """Entries as JSON files in one directory (one host, or hosts sharing the directory)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        #: Absolute, so locations name the file wherever they are read.
        self.directory = Path(os.path.abspath(os.fspath(directory)))

    def describe(self) -> str:
        return f"registry directory {self.directory}"

    def location(self, run_id: str, attempt: int) -> str:
        return str(self.directory / entry_file_name(run_id, attempt))

    def close(self) -> None:
        return None

    # -- writing -------------------------------------------------------------------------
    def register(self, entry: RegistryEntry) -> Registration:
        path = self.directory / entry_file_name(entry.run_id, entry.attempt)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OpsInputError(
                "--registry", str(self.directory), f"cannot create it: {exc.strerror or exc}"
            ) from None
        stored = self._read(path)
        if stored is not None:
            return check_stored(stored, entry, str(path))
        if self._publish(path, entry_json(entry).encode("utf-8")):
            return Registration(entry=entry, location=str(path), created=True)
        stored = self._read(path)
        if stored is None:  # pragma: no cover - a link that exists cannot vanish unless removed
            raise CorruptRegistryEntry(str(path), "vanished right after another writer made it")
        return check_stored(stored, entry, str(path))

    def _publish(self, path: Path, data: bytes) -> bool:
        """Create ``path`` with ``data`` durably, never over an existing file; False if it was."""
        tmp = self.directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            fsync_dir(self.directory)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------
    def _read(self, path: Path) -> RegistryEntry | None:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptRegistryEntry(
                str(path), f"cannot read it: {exc.strerror or exc}"
            ) from None
        if len(data) > MAX_ENTRY_BYTES:
            raise CorruptRegistryEntry(str(path), f"larger than {MAX_ENTRY_BYTES} bytes")
        entry = parse_entry(data, str(path))
        if entry_file_name(entry.run_id, entry.attempt) != path.name:
            raise CorruptRegistryEntry(
                str(path), f"it holds run {entry.run_id!r} attempt {entry.attempt}, not its name's"
            )
        return entry

    def _names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.directory) if n.endswith(ENTRY_SUFFIX))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OpsInputError(
                "--registry", str(self.directory), f"cannot list it: {exc.strerror or exc}"
            ) from None

    def _attempts(self, run_id: str) -> list[int]:
        stem = file_safe_name(run_id)
        found = []
        for name in self._names():
            head = name[: -len(ENTRY_SUFFIX)]
            if head == stem:
                found.append(1)
            elif head.startswith(stem + ".") and head[len(stem) + 1 :].isdigit():
                found.append(int(head[len(stem) + 1 :]))
        return sorted(found)

    def get(self, run_id: str, attempt: int | None = None) -> RegistryEntry | None:
        if attempt is None:
            attempts = self._attempts(run_id)
            if not attempts:
                return None
            attempt = attempts[-1]
        return self._read(self.directory / entry_file_name(run_id, attempt))

    def list_entries(self, query: RegistryQuery) -> RegistryListing:
        names = self._names()
        if query.run_id is not None:
            wanted = {entry_file_name(query.run_id, n) for n in self._attempts(query.run_id)}
            names = [n for n in names if n in wanted]
        entries: list[RegistryEntry] = []
        problems: list[str] = []
        for name in names:
            try:
                entry = self._read(self.directory / name)
            except CorruptRegistryEntry as exc:
                problems.append(str(exc))
                continue
            if entry is not None:
                entries.append(entry)
        return RegistryListing(entries=select_entries(entries, query), problems=problems)
