"""The registry entry: one immutable record per run id and attempt (pure functions only).

An entry is a :class:`~dpone_core.ops.outcome.RunOutcome` plus what registering
added: the registered run result file and the named artifacts (path, size,
SHA-256), the parent run a scheduler passed, and who registered it when. Its
``fingerprint`` is the SHA-256 of its canonical JSON *without* the registration
fields (``fingerprint``, ``registered_at``, ``registered_by``): registering the
same content again is a no-op, registering different content for the same run id
and attempt is refused.

**One entry per run id and attempt.** The attempt is the job state's count of
admitted attempts, so a run that failed and was resumed has two entries (attempt
1 ``failed``, attempt 2 ``committed``), neither rewritten; a plain ``dpone run``
result is attempt 1. The entry of attempt 1 is ``<run id>__run_registry.json``,
later attempts ``<run id>.<attempt>__run_registry.json`` (``<run id>`` made
file-safe by :func:`~dpone_core.naming.file_safe_name`, which never produces a
``.``, so the names are injective). "The entry of a run id" is its latest attempt.

Every string of an entry passes :func:`~dpone_core.redact.redact` when it is
built: no registered secret reaches a registry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dpone_core.clock import parse_utc
from dpone_core.naming import file_safe_name
from dpone_core.ops.artifacts import Artifact
from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.outcome import RunOutcome
from dpone_core.redact import redact

__all__ = [
    "ENTRY_SCHEMA_VERSION",
    "ENTRY_SUFFIX",
    "ParentRun",
    "RegisteredBy",
    "RegistryEntry",
    "RegistryQuery",
    "build_entry",
    "differences",
    "entry_file_name",
    "fingerprint_of",
    "latest_per_run",
    "matches",
    "parse_parent_id",
    "redact_strings",
    "select_entries",
]

ENTRY_SCHEMA_VERSION = 1
ENTRY_SUFFIX = "__run_registry.json"
_REGISTRATION_FIELDS = frozenset({"fingerprint", "registered_at", "registered_by"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParentRun(_Frozen):
    """The run that started this one (an Airflow task, a Dagster step...), OpenLineage style."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    run_id: str
    root: ParentRun | None = None


class RegisteredBy(_Frozen):
    host: str
    pid: int


class RegistryEntry(RunOutcome):
    """The registry's file format (``schema_version`` 1)."""

    schema_version: Literal[1] = 1
    #: The run result file this entry was registered from.
    run_result: Artifact
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    parent: ParentRun | None = None
    fingerprint: str = ""
    registered_at: str
    registered_by: RegisteredBy


def parse_parent_id(text: str, source: str, root: str | None = None) -> ParentRun:
    """``<namespace>/<job name>/<run uuid>`` (OpenLineage's ``OPENLINEAGE_PARENT_ID`` form)."""
    head, sep, run_id = text.strip().rpartition("/")
    namespace, sep2, name = head.partition("/")
    expected = f"expected '<namespace>/<job name>/<run uuid>' (got {text!r})"
    if not sep or not sep2 or not namespace or not name:
        raise OpsInputError(source, "", expected)
    try:
        canonical = str(uuid.UUID(run_id))
    except ValueError:
        raise OpsInputError(source, "", f"{expected}: {run_id!r} is not a UUID") from None
    parent_root = parse_parent_id(root, f"{source} (root)") if root else None
    return ParentRun(namespace=namespace, name=name, run_id=canonical, root=parent_root)


def redact_strings(value: Any) -> Any:
    """``value`` (JSON-like) with every string passed through :func:`redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_strings(v) for v in value]
    return value


def _content(entry: RegistryEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude=set(_REGISTRATION_FIELDS))


def fingerprint_of(entry: RegistryEntry) -> str:
    """SHA-256 of the entry's canonical JSON, registration fields left out."""
    text = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_entry(
    outcome: RunOutcome,
    *,
    run_result: Artifact,
    artifacts: dict[str, Artifact],
    parent: ParentRun | None,
    registered_at: str,
    registered_by: RegisteredBy,
) -> RegistryEntry:
    """The entry registering ``outcome`` (redacted, fingerprinted)."""
    draft = RegistryEntry(
        **outcome.model_dump(),
        run_result=run_result,
        artifacts=dict(sorted(artifacts.items())),
        parent=parent,
        registered_at=registered_at,
        registered_by=registered_by,
    )
    clean = RegistryEntry.model_validate(redact_strings(draft.model_dump(mode="json")))
    return clean.model_copy(update={"fingerprint": fingerprint_of(clean)})


def differences(stored: RegistryEntry, new: RegistryEntry) -> list[str]:
    """The top-level fields whose content differs (registration fields aside)."""
    a, b = _content(stored), _content(new)
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


def entry_file_name(run_id: str, attempt: int) -> str:
    """``<safe run id>__run_registry.json`` (attempt 1) or ``<safe>.<n>__run_registry.json``."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    stem = file_safe_name(run_id)
    return f"{stem}{ENTRY_SUFFIX}" if attempt == 1 else f"{stem}.{attempt}{ENTRY_SUFFIX}"


# -- queries -----------------------------------------------------------------------------


class RegistryQuery(_Frozen):
    """Which entries to list; every given criterion must hold (None: any)."""

    run_id: str | None = None
    process: str | None = None
    status: str | None = None
    #: The UTC date the run started on.
    on_date: date | None = None
    #: Runs that started at or after / before this instant.
    since: datetime | None = None
    until: datetime | None = None
    #: Only the latest attempt of each run id.
    latest: bool = False


def _start(entry: RegistryEntry) -> datetime | None:
    for value in (entry.started_at, entry.registered_at):
        if value:
            try:
                return parse_utc(value)
            except ValueError:
                continue
    return None


def matches(entry: RegistryEntry, query: RegistryQuery) -> bool:
    """Whether ``entry`` satisfies every criterion of ``query``."""
    if query.run_id is not None and entry.run_id != query.run_id:
        return False
    if query.process is not None and entry.process != query.process:
        return False
    if query.status is not None and entry.status != query.status:
        return False
    if query.on_date is None and query.since is None and query.until is None:
        return True
    start = _start(entry)
    if start is None:
        return False
    if query.on_date is not None and start.date() != query.on_date:
        return False
    if query.since is not None and start < query.since:
        return False
    return not (query.until is not None and start >= query.until)


def _order(entry: RegistryEntry) -> tuple[str, str, int]:
    return (entry.started_at or entry.registered_at, entry.run_id, entry.attempt)


def latest_per_run(entries: Iterable[RegistryEntry]) -> list[RegistryEntry]:
    """The entry of the highest attempt of each run id."""
    best: dict[str, RegistryEntry] = {}
    for entry in entries:
        seen = best.get(entry.run_id)
        if seen is None or entry.attempt > seen.attempt:
            best[entry.run_id] = entry
    return list(best.values())


def select_entries(entries: Iterable[RegistryEntry], query: RegistryQuery) -> list[RegistryEntry]:
    """The entries ``query`` selects, oldest run first."""
    pool = latest_per_run(entries) if query.latest else list(entries)
    return sorted((e for e in pool if matches(e, query)), key=_order)
