"""The backend contract: what the orchestrator, the CLI and the Dagster adapter rely on.

A *backend* is a lock manager and a job-state store that belong together. Two
implementations sit side by side, neither inheriting from the other: local
files (:mod:`.file_locks`, :mod:`.file_state`) and PostgreSQL
(:mod:`dpone_core.backends.postgres_locks`, :mod:`dpone_core.backends.postgres_state`).
Callers use only the protocols below; one contract suite (tests/contract/)
runs against both. See docs/architecture.md, "The backend contract".

Errors each call may raise (all under :class:`dpone_core.errors.DponeError`):

- every call: :class:`~dpone_core.errors.OrchestrationBackendError` (the
  backend is unreachable or refused; a retry may help);
- ``JobStateStore.load``: :class:`~dpone_core.errors.CorruptJobState` (fail closed);
- ``JobStateStore.save``: :class:`~dpone_core.errors.JobStateConflict` when the
  stored state is no longer the revision this store loaded (compare-and-set),
  and its subclass :class:`~dpone_core.errors.LeaseLost` when the writer no
  longer holds the key (fencing). Nothing is written in either case.
- ``JobStateStore.changed_since``: :class:`~dpone_core.errors.DponeUsageError`
  for a cursor that another store wrote (or that is not a cursor at all). An
  unreadable state is never raised: it is listed in the page and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dpone_core.clock import parse_utc, utc_now
from dpone_core.job_state import JobState

__all__ = [
    "LOCK_SCHEMA_VERSION",
    "BackendSettings",
    "HeldLock",
    "HeldLockMixin",
    "JobStateChanges",
    "JobStateStore",
    "LockAcquisition",
    "LockHolder",
    "LockManager",
    "LockState",
    "LockStatus",
    "OrchestrationBackend",
    "UnreadableJobState",
]

LOCK_SCHEMA_VERSION = 1

LockState = Literal["held", "stale", "corrupt"]


class LockHolder(BaseModel):
    """Who holds a key: the file backend's ``<lock-dir>/<name>.lock.json``, or a lease row.

    Validation is strict on purpose: a record whose timestamps or pid cannot
    be interpreted would make every liveness answer a guess, so it counts as
    corrupt instead. Extra fields are ignored, so a PostgreSQL lease (which
    adds its generation and session) reads as a holder too.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = LOCK_SCHEMA_VERSION
    key: str = Field(min_length=1)
    run_id: str
    pid: int = Field(gt=0)
    host: str = Field(min_length=1)
    acquired_at: str
    heartbeat_at: str
    token: str = Field(min_length=1)
    #: Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat``
    #: field 22); tells a live holder from an unrelated process that reused
    #: its pid. ``None`` where ``/proc`` does not exist.
    pid_start_time: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        # A record from a newer writer may mean something we cannot see;
        # refusing it (lock.corrupt) beats overwriting it.
        if value != LOCK_SCHEMA_VERSION:
            raise ValueError(
                f"unsupported schema_version {value}, expected {LOCK_SCHEMA_VERSION}"
            )
        return value

    @field_validator("acquired_at", "heartbeat_at")
    @classmethod
    def _utc_timestamp(cls, value: str) -> str:
        parse_utc(value)
        return value

    def heartbeat_age_seconds(self) -> float:
        return (utc_now() - parse_utc(self.heartbeat_at)).total_seconds()

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on host {self.host}) since {self.acquired_at}"


@runtime_checkable
class HeldLock(Protocol):
    """A held key. Release it (or use ``with``) when the execution ends."""

    @property
    def key(self) -> str: ...

    @property
    def token(self) -> str:
        """Identifies this holding of the key; the job state records it (fencing)."""
        ...

    @property
    def holder(self) -> LockHolder: ...

    @property
    def released(self) -> bool: ...

    @property
    def lost_reason(self) -> str | None:
        """Why the key was lost while held (a backend may lose it: a session ends), else None."""
        ...

    def release(self) -> None:
        """Give the key back; safe to call twice and after the key was lost."""
        ...

    def __enter__(self) -> HeldLock: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_Held = TypeVar("_Held", bound=HeldLock)


class HeldLockMixin:
    """``key``, ``token``, ``with`` support and a readable repr, derived from ``holder``;
    shared by every :class:`HeldLock` implementation.

    A mixin, not a base class: it holds no state and knows no storage, so the
    two backends still implement the protocol side by side.
    """

    @property
    def key(self: HeldLock) -> str:
        return self.holder.key

    @property
    def token(self: HeldLock) -> str:
        return self.holder.token

    def __enter__(self: _Held) -> _Held:
        return self

    def __exit__(
        self: HeldLock,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self: HeldLock) -> str:
        state = "released" if self.released else "held"
        return f"{type(self).__name__}(key={self.key!r}, run_id={self.holder.run_id!r}, {state})"


@dataclass(frozen=True)
class LockAcquisition:
    """The outcome of one acquire attempt; a refusal is a value, not an exception,
    because callers turn it into a report blocker."""

    acquired: bool
    lock: HeldLock | None
    blocker: str | None
    holder: LockHolder | None
    message: str
    stale_lock_replaced: bool = False
    replaced_holder: LockHolder | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "acquired": self.acquired,
            "key": self.lock.key if self.lock is not None else None,
            "blocker": self.blocker,
            "holder": self.holder.model_dump() if self.holder is not None else None,
            "message": self.message,
            "stale_lock_replaced": self.stale_lock_replaced,
            "replaced_holder": (
                self.replaced_holder.model_dump() if self.replaced_holder is not None else None
            ),
        }


@dataclass(frozen=True)
class LockStatus:
    """One key found by :meth:`LockManager.inspect`.

    ``location`` is where its record lives (a file path, or a table and key),
    printable and free of secrets. For a corrupt record ``key`` is the best
    name we have (decoded from the file name, or the row's key).
    """

    key: str
    holder: LockHolder | None
    state: LockState
    location: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": self.state,
            "holder": self.holder.model_dump(mode="json") if self.holder is not None else None,
            "location": self.location,
            # The pre-0.2 name of ``location`` (a file path for the file backend).
            "record_path": self.location,
        }


@runtime_checkable
class LockManager(Protocol):
    """One live execution per key, ever."""

    def acquire(self, key: str, *, run_id: str) -> LockAcquisition:
        """Take ``key`` for ``run_id`` without waiting; a refusal says who holds it."""
        ...

    def is_held(self, key: str, token: str) -> bool | None:
        """Is ``key`` still held by the holding identified by ``token``?

        ``False`` only when that holding provably ended (the key is free, held
        under another token, or its holder is dead); ``None`` when it cannot be
        told, which callers must treat as "maybe alive".
        """
        ...

    def inspect(self) -> list[LockStatus]:
        """Every key with a holder record, judged without disturbing any holder."""
        ...

    def handoff_settings(self) -> BackendSettings:
        """What a scheduler's ``dpone orchestrate run`` needs to use these same locks."""
        ...


@runtime_checkable
class JobStateStore(Protocol):
    """Where job states live. Only the holder of a run's key writes its state."""

    def load(self, run_id: str) -> JobState | None:
        """The state of ``run_id``, None if there is none; raises CorruptJobState.

        Remembers the revision it read: the next ``save`` of this run id is
        compared against it.
        """
        ...

    def save(self, state: JobState) -> None:
        """Write ``state`` if the stored state is still the revision last loaded.

        For a run id this store never loaded, ``state`` must extend what is
        stored (or nothing may be stored). Raises JobStateConflict otherwise.
        """
        ...

    def location(self, run_id: str) -> str:
        """Where the state of ``run_id`` lives, for evidence and messages (no secrets)."""
        ...

    def changed_since(self, cursor: str | None, limit: int) -> JobStateChanges:
        """A page of at most ``limit`` states written after ``cursor`` (None: the beginning).

        States come in a stable order, each as stored when read (a state written
        several times between two calls appears once, at its newest). Pass the
        page's ``cursor`` to the next call: no state whose write completes after
        a page was read is ever skipped, whatever the writers' clocks or the
        order in which concurrent writes complete; a state may (rarely) appear
        twice at the same revision, so consumers dedupe by (run id,
        ``updated_at``). Read-only, and remembers no revision for ``save``.
        """
        ...

    def handoff_settings(self) -> BackendSettings:
        """What a scheduler's ``dpone orchestrate run`` needs to use this same store."""
        ...

    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects)."""
        ...


@dataclass(frozen=True)
class UnreadableJobState:
    """A stored state :meth:`JobStateStore.changed_since` could not read: skipped, reported.

    The same fault :meth:`JobStateStore.load` raises as ``CorruptJobState``;
    nothing ever rewrites it.
    """

    location: str
    reason: str


@dataclass(frozen=True)
class JobStateChanges:
    """One page of :meth:`JobStateStore.changed_since`."""

    #: The states written after the cursor, in the store's stable order.
    states: list[JobState]
    #: Stored states that could not be read (corrupt, unreadable): skipped, not fatal.
    unreadable: list[UnreadableJobState]
    #: Where the next page starts; opaque, tied to this store (a foreign one is refused).
    cursor: str
    #: True when more changes were already there: ask again at once.
    more: bool


@dataclass(frozen=True)
class BackendSettings:
    """Where a backend keeps its locks and states, in neutral words (no CLI flag names).

    The CLI renders these as flags for scheduler handoffs
    (:func:`dpone_core.cli_flags.orchestrate_run_argv`); ``env_refs`` names the
    environment variables a handoff must provide (never their values).
    """

    backend: str | None = None
    backend_schema: str | None = None
    lock_dir: str | None = None
    lock_ttl_seconds: float | None = None
    state_dir: str | None = None
    env_refs: dict[str, str] = field(default_factory=dict)

    def merged(self, other: BackendSettings) -> BackendSettings:
        """These settings completed by ``other``'s (ours win where both are set)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "env_refs":
                values[f.name] = {**theirs, **mine}
            else:
                values[f.name] = mine if mine is not None else theirs
        return BackendSettings(**values)


@runtime_checkable
class OrchestrationBackend(Protocol):
    """A lock manager and a job-state store that belong together."""

    @property
    def lock_manager(self) -> LockManager: ...

    @property
    def job_state_store(self) -> JobStateStore: ...

    @property
    def location(self) -> str:
        """Where locks and states live, safe to print (never a password)."""
        ...

    def describe(self) -> str:
        """The same as :attr:`location`, for messages."""
        ...

    def handoff_settings(self) -> BackendSettings:
        """What a scheduler's ``dpone orchestrate run`` needs to use this backend,
        environment references included (names, never values)."""
        ...

    def close(self) -> None:
        """Close what the backend holds open (held locks are not touched)."""
        ...
