"""The run registry in PostgreSQL: :class:`PostgresRunRegistry` over the ``run_registry`` table.

The table and its one-write-per-key insert are
:class:`~dpone_core.backends.postgres_registry.PostgresRegistryTable`'s (the
only place psycopg is used); this adapter turns rows into
:class:`~dpone_core.ops.entry.RegistryEntry` values and keeps the promises of
:class:`~dpone_core.ops.registry.RunRegistry` exactly as the file store does.
"""

from __future__ import annotations

import json
from typing import Any

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_registry import PostgresRegistryTable, StoredRow
from dpone_core.ops.entry import RegistryEntry, RegistryQuery, select_entries
from dpone_core.ops.errors import CorruptRegistryEntry
from dpone_core.ops.registry import Registration, RegistryListing, check_stored, parse_entry

__all__ = ["PostgresRunRegistry"]


def _document_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class PostgresRunRegistry:
    """Entries as rows of ``{schema}.run_registry``: one registry for every host."""

    def __init__(self, target: PostgresTarget) -> None:
        self.table = PostgresRegistryTable(target)

    def describe(self) -> str:
        return self.table.describe()

    def location(self, run_id: str, attempt: int) -> str:
        return self.table.location(run_id, attempt)

    def close(self) -> None:
        self.table.close()

    def _entry(self, row: StoredRow) -> RegistryEntry:
        run_id, attempt, document = row
        where = self.location(run_id, attempt)
        entry = parse_entry(_document_text(document), where)
        if (entry.run_id, entry.attempt) != (run_id, attempt):
            raise CorruptRegistryEntry(where, "the document names another run id or attempt")
        return entry

    def register(self, entry: RegistryEntry) -> Registration:
        where = self.location(entry.run_id, entry.attempt)
        stored = self.table.insert(
            run_id=entry.run_id,
            attempt=entry.attempt,
            process=entry.process,
            status=entry.status,
            started_at=entry.started_at,
            fingerprint=entry.fingerprint,
            registered_at=entry.registered_at,
            document=entry.model_dump(mode="json"),
        )
        if stored is None:
            return Registration(entry=entry, location=where, created=True)
        return check_stored(self._entry(stored), entry, where)

    def get(self, run_id: str, attempt: int | None = None) -> RegistryEntry | None:
        row = self.table.fetch(run_id, attempt)
        return None if row is None else self._entry(row)

    def list_entries(self, query: RegistryQuery) -> RegistryListing:
        rows = self.table.fetch_many(
            run_id=query.run_id, process=query.process, status=query.status
        )
        entries: list[RegistryEntry] = []
        problems: list[str] = []
        for row in rows:
            try:
                entries.append(self._entry(row))
            except CorruptRegistryEntry as exc:
                problems.append(str(exc))
        return RegistryListing(entries=select_entries(entries, query), problems=problems)
