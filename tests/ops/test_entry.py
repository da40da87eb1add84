"""Registry entries: fingerprints, file names, parents, queries, redaction (pure functions)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpone_core.ops.artifacts import Artifact
from dpone_core.ops.entry import (
    RegisteredBy,
    RegistryEntry,
    RegistryQuery,
    build_entry,
    differences,
    entry_file_name,
    fingerprint_of,
    latest_per_run,
    matches,
    parse_parent_id,
    select_entries,
)
from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.outcome import outcome_from_document
from dpone_core.redact import register_secret
from tests.ops.documents import report_doc

RESULT = Artifact(path="/r/orchestrated_run.json", size=10, sha256="a" * 64)


def make_entry(
    *,
    run_id: str = "shop.orders_2026_11_30",
    attempt: int = 1,
    status: str = "committed",
    at: str = "2026-12-01T00:00:00.000000Z",
    artifacts: dict[str, Artifact] | None = None,
    errors: list[str] | None = None,
) -> RegistryEntry:
    outcome = outcome_from_document(
        report_doc(run_id=run_id, attempt=attempt, status=status, errors=errors), "r.json"
    )
    return build_entry(
        outcome,
        run_result=RESULT,
        artifacts=artifacts or {},
        parent=None,
        registered_at=at,
        registered_by=RegisteredBy(host="h", pid=1),
    )


def test_fingerprint_ignores_who_registered_when() -> None:
    a = make_entry(at="2026-12-01T00:00:00.000000Z")
    b = make_entry(at="2027-01-01T00:00:00.000000Z")
    assert a.fingerprint == b.fingerprint == fingerprint_of(a)
    assert len(a.fingerprint) == 64 and a.schema_version == 1


def test_different_content_has_another_fingerprint_and_says_where() -> None:
    a = make_entry()
    b = make_entry(artifacts={"orchestration": RESULT})
    assert a.fingerprint != b.fingerprint
    assert differences(a, b) == ["artifacts"]


def test_registered_secrets_never_reach_an_entry() -> None:
    register_secret("hunter2/with space")
    entry = make_entry(status="failed", errors=["cannot connect with hunter2/with space"])
    text = entry.model_dump_json()
    assert "hunter2" not in text and "***" in text


@pytest.mark.parametrize(
    ("run_id", "attempt", "name"),
    [
        ("shop.orders_2026_11_30", 1, "shop%2Eorders_2026_11_30__run_registry.json"),
        ("shop.orders_2026_11_30", 3, "shop%2Eorders_2026_11_30.3__run_registry.json"),
        ("a/b", 1, "a%2Fb__run_registry.json"),
    ],
)
def test_entry_file_names(run_id: str, attempt: int, name: str) -> None:
    assert entry_file_name(run_id, attempt) == name


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=150), st.integers(min_value=1, max_value=10**6)),
        min_size=2,
        max_size=6,
        unique=True,
    )
)
def test_entry_file_names_are_injective_and_contained(keys: list[tuple[str, int]]) -> None:
    names = [entry_file_name(run_id, attempt) for run_id, attempt in keys]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and name not in (".", "..") and len(name.encode()) <= 255


def test_parent_ids_in_the_openlineage_form() -> None:
    run = str(uuid.uuid4())
    root = str(uuid.uuid4())
    parent = parse_parent_id(
        f"airflow-prod/daily.orders/{run}", "--parent-run", f"airflow/daily/{root}"
    )
    assert (parent.namespace, parent.name, parent.run_id) == ("airflow-prod", "daily.orders", run)
    assert parent.root is not None and parent.root.run_id == root
    nested = parse_parent_id(f"ns/a/b/{run}", "x")
    assert (nested.namespace, nested.name) == ("ns", "a/b")


@pytest.mark.parametrize("text", ["", "ns/name", "ns//" + str(uuid.uuid4()), "ns/name/not-a-uuid"])
def test_bad_parent_ids_are_refused(text: str) -> None:
    with pytest.raises(OpsInputError, match="namespace>/<job name>/<run uuid"):
        parse_parent_id(text, "--parent-run")


def test_queries_select_by_run_id_process_status_and_date() -> None:
    first = make_entry(run_id="r1", attempt=1, status="failed")
    second = make_entry(run_id="r1", attempt=2)
    other = make_entry(run_id="r2")
    entries = [other, second, first]
    assert [e.attempt for e in select_entries(entries, RegistryQuery(run_id="r1"))] == [1, 2]
    assert select_entries(entries, RegistryQuery(status="failed")) == [first]
    assert select_entries(entries, RegistryQuery(process="nope")) == []
    latest = select_entries(entries, RegistryQuery(latest=True))
    assert {(e.run_id, e.attempt) for e in latest} == {("r1", 2), ("r2", 1)}
    assert latest_per_run([first, second])[0].attempt == 2
    # attempt 1 started at 01:00, attempt 2 at 02:00 on 2026-11-30 (UTC)
    assert matches(first, RegistryQuery(on_date=date(2026, 11, 30)))
    assert not matches(first, RegistryQuery(on_date=date(2026, 12, 1)))
    since = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
    assert select_entries(entries, RegistryQuery(run_id="r1", since=since)) == [second]
    assert select_entries(entries, RegistryQuery(run_id="r1", until=since)) == [first]
