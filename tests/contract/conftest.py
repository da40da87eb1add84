"""Fixtures of the contract suite: one backend per test, files or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import BACKENDS, POSTGRESQL, BackendSite, FaultInjector


@pytest.fixture(params=BACKENDS)
def backend_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSite]:
    """Where this test's locks and states live: private directories, or a private schema."""
    if request.param != POSTGRESQL:
        yield BackendSite(request.param, tmp_path)
        return
    from tests.support.pg import drop_schema, new_schema

    site = BackendSite(POSTGRESQL, tmp_path, schema=new_schema())
    yield site
    drop_schema(site.schema or "")


@pytest.fixture
def backend(backend_site: BackendSite) -> Iterator[Any]:
    """The backend built by ``select_backend``: ``.lock_manager``, ``.job_state_store``."""
    built = backend_site.open()
    yield built
    built.close()


@pytest.fixture
def faults(backend_site: BackendSite) -> FaultInjector:
    return backend_site.faults()
