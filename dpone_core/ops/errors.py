"""The errors of ``dpone ops``, under the one root :class:`~dpone_core.errors.DponeError`.

- :class:`OpsInputError`: a file or flag is invalid (CLI exit 2); the message
  names the file or flag, the field and what was expected.
- :class:`RegistryConflict`: the registry already holds a *different* entry for
  the run id and attempt; nothing was written (exit 1).
- :class:`CorruptRegistryEntry`: a stored entry cannot be read; left untouched (exit 1).
"""

from __future__ import annotations

from dpone_core.errors import DponeError, DponeUsageError

__all__ = ["CorruptRegistryEntry", "OpsInputError", "RegistryConflict"]


class OpsInputError(DponeUsageError):
    """A run result, artifact, entry or flag that cannot be used as given."""

    def __init__(self, source: str, field: str, expected: str) -> None:
        from dpone_core.redact import redact
        from dpone_core.text import escape_control

        self.source = source
        self.field = field
        self.expected = expected
        where = f"{source}: {field}" if field else source
        super().__init__(escape_control(redact(f"{where}: {expected}")))


class RegistryConflict(DponeError):
    """A different entry is registered for this run id and attempt; it is kept as it is."""

    def __init__(self, run_id: str, attempt: int, location: str, differs: str) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.location = location
        super().__init__(
            f"run {run_id!r} attempt {attempt} is already registered at {location} with "
            f"different content ({differs}); entries are immutable, nothing was written"
        )


class CorruptRegistryEntry(DponeError):
    """A stored registry entry that cannot be parsed; callers leave it alone."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")
