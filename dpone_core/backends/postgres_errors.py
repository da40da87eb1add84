"""psycopg errors as backend errors, mapped in one place.

A connection failure is :class:`~dpone_core.errors.BackendUnavailable` (the
server may be back in a moment); any other driver error is an
:class:`~dpone_core.errors.OrchestrationBackendError`. Messages name the
server without its password and keep only the driver's first line.
"""

from __future__ import annotations

import psycopg

from dpone_core.backends.postgres_connection import PostgresTarget, first_line
from dpone_core.errors import BackendUnavailable, OrchestrationBackendError

__all__ = ["backend_error"]


def backend_error(
    exc: psycopg.Error, target: PostgresTarget, doing: str
) -> OrchestrationBackendError:
    """The backend error to raise (``from None``) for ``exc`` met while ``doing`` something."""
    if isinstance(exc, psycopg.OperationalError):
        return BackendUnavailable(
            f"{target.describe()}: connection failed while {doing}: {first_line(exc)}"
        )
    return OrchestrationBackendError(f"{target.describe()}: {doing} failed: {first_line(exc)}")
