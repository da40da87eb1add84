"""Pick the run registry: a directory (the default) or the PostgreSQL backend's table.

``--registry`` takes

``DIR``
    Entries as files in ``DIR`` (default ``.dpone/run-registry``).
``postgresql``
    The table ``run_registry`` in the PostgreSQL backend, DSN from
    ``DPONE_ORCHESTRATION_DSN`` (which must then be set), schema from
    ``--backend-schema``, else ``DPONE_ORCHESTRATION_SCHEMA``, else ``dpone``.
``postgresql://...`` (or ``postgres://``)
    The same with this DSN (visible in the process list: prefer the variable).

A directory literally named ``postgresql`` is spelled ``./postgresql``.

:func:`find_registry_entry` is the one call for readers that only have a run id
(the Dagster adapter's link from an asset's metadata to the registry entry).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dpone_core import defaults
from dpone_core.ops.entry import RegistryEntry
from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.registry import FileRunRegistry, RunRegistry
from dpone_core.redact import redact_url

__all__ = [
    "DEFAULT_REGISTRY_DIR",
    "FoundEntry",
    "find_registry_entry",
    "is_postgres_registry",
    "open_registry",
]

DEFAULT_REGISTRY_DIR = ".dpone/run-registry"
_URL = re.compile(r"(?i)^(postgres|postgresql)(\+[a-z0-9_]+)?://")


def _dsn(value: str, environ: Mapping[str, str]) -> str | None:
    """The DSN ``value`` names, or None when it names a directory."""
    if value.lower() in ("postgresql", "postgres"):
        dsn = (environ.get(defaults.ORCHESTRATION_DSN_ENV) or "").strip()
        if not dsn:
            raise OpsInputError(
                "--registry",
                value,
                f"reads the DSN from {defaults.ORCHESTRATION_DSN_ENV}, which is not set",
            )
        return dsn
    match = _URL.match(value)
    if match:
        return "postgresql://" + value[match.end() :]
    return None


def is_postgres_registry(value: str | os.PathLike[str]) -> bool:
    """Whether ``--registry value`` names PostgreSQL (rather than a directory)."""
    text = os.fspath(value).strip()
    return text.lower() in ("postgresql", "postgres") or _URL.match(text) is not None


def open_registry(
    registry: str | os.PathLike[str] | None = None,
    *,
    schema: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunRegistry:
    """The registry ``registry`` names (see the module doc); close it when done."""
    env = os.environ if environ is None else environ
    value = os.fspath(registry) if registry is not None else DEFAULT_REGISTRY_DIR
    if not value.strip():
        raise OpsInputError("--registry", "", "expected a directory, 'postgresql' or a URL")
    dsn = _dsn(value.strip(), env)
    if dsn is None:
        if schema is not None:
            raise OpsInputError(
                "--backend-schema",
                schema,
                f"applies to a PostgreSQL registry only; {redact_url(value)!r} is a directory",
            )
        return FileRunRegistry(value)
    from dpone_core.backends.postgres_connection import PostgresTarget
    from dpone_core.ops.registry_postgres import PostgresRunRegistry

    chosen = (
        schema
        or (env.get(defaults.ORCHESTRATION_SCHEMA_ENV) or "").strip()
        or defaults.BACKEND_SCHEMA
    )
    return PostgresRunRegistry(PostgresTarget(dsn, chosen))


@dataclass(frozen=True)
class FoundEntry:
    entry: RegistryEntry
    #: Where it is stored: a file path, or ``postgresql://... schema.run_registry run id ...``.
    location: str


def find_registry_entry(
    run_id: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    schema: str | None = None,
    attempt: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> FoundEntry | None:
    """The registry entry of ``run_id`` (its latest attempt unless ``attempt``), or None.

    Raises :class:`~dpone_core.ops.errors.CorruptRegistryEntry` for an entry that
    cannot be trusted and the backend errors of PostgreSQL when it is unreachable.
    """
    store = open_registry(registry, schema=schema, environ=environ)
    try:
        entry = store.get(run_id, attempt)
        if entry is None:
            return None
        return FoundEntry(entry=entry, location=store.location(entry.run_id, entry.attempt))
    finally:
        store.close()
