"""Shared fixtures. Helpers live in tests.support; fixtures only here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for the backend's tables, dropped afterwards."""
    from tests.support.pg import drop_schema, new_schema

    name = new_schema()
    yield name
    drop_schema(name)
