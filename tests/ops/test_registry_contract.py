"""One contract, both stores: the run registry in files and in PostgreSQL behave alike.

Each test gets a private registry directory or a private PostgreSQL schema
(the real local server); the race tests start real ``dpone`` processes at one
instant.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpone_core.ops.entry import RegistryQuery
from dpone_core.ops.errors import CorruptRegistryEntry, RegistryConflict
from tests.ops.conftest import FILES, RegistrySite
from tests.ops.documents import report_doc
from tests.ops.test_entry import RESULT, make_entry
from tests.support.racing import race_at_once
from tests.support.workspace import CLI_AT


def test_register_once_then_identical_is_a_no_op(registry_site: RegistrySite) -> None:
    store = registry_site.open()
    try:
        entry = make_entry()
        first = store.register(entry)
        assert first.created and first.entry == entry
        again = store.register(make_entry(at="2030-01-01T00:00:00.000000Z"))
        assert not again.created
        assert again.entry.registered_at == entry.registered_at  # the stored one, untouched
        assert again.location == first.location == store.location(entry.run_id, 1)
        assert store.get(entry.run_id) == entry
        assert store.get("no such run") is None
    finally:
        store.close()


def test_a_different_entry_for_the_same_run_is_refused(registry_site: RegistrySite) -> None:
    store = registry_site.open()
    try:
        stored = make_entry()
        store.register(stored)
        with pytest.raises(RegistryConflict, match="differs in artifacts") as exc:
            store.register(make_entry(artifacts={"orchestration": RESULT}))
        assert exc.value.run_id == stored.run_id
        assert store.get(stored.run_id) == stored
    finally:
        store.close()


def test_attempts_are_separate_entries_and_the_latest_is_the_runs(
    registry_site: RegistrySite,
) -> None:
    store = registry_site.open()
    try:
        failed = make_entry(attempt=1, status="failed", errors=["boom"])
        committed = make_entry(attempt=2)
        store.register(failed)
        store.register(committed)
        assert store.get(failed.run_id) == committed
        assert store.get(failed.run_id, 1) == failed
        listing = store.list_entries(RegistryQuery(run_id=failed.run_id))
        assert [e.attempt for e in listing.entries] == [1, 2]
        latest = store.list_entries(RegistryQuery(latest=True)).entries
        assert [e.attempt for e in latest] == [2]
    finally:
        store.close()


def test_queries_by_process_status_and_date(registry_site: RegistrySite) -> None:
    from datetime import date

    store = registry_site.open()
    try:
        for run_id, status in (("r1", "committed"), ("r2", "failed"), ("r3", "committed")):
            store.register(make_entry(run_id=run_id, status=status))
        listed = store.list_entries(RegistryQuery(status="committed")).entries
        assert [e.run_id for e in listed] == ["r1", "r3"]
        assert store.list_entries(RegistryQuery(process="orders")).entries[0].run_id == "r1"
        assert store.list_entries(RegistryQuery(on_date=date(2026, 11, 30))).problems == []
        assert len(store.list_entries(RegistryQuery(on_date=date(2026, 11, 30))).entries) == 3
        assert store.list_entries(RegistryQuery(on_date=date(2026, 11, 29))).entries == []
    finally:
        store.close()


def _tamper(site: RegistrySite, run_id: str) -> None:
    """Change a stored entry behind the registry's back."""
    if site.kind == FILES:
        path = next(Path(site.value).glob("*__run_registry.json"))
        data = json.loads(path.read_text())
        data["status"] = "failed"
        path.write_text(json.dumps(data))
        return
    from tests.support.pg import query

    query(
        f"UPDATE {site.schema}.run_registry SET document = jsonb_set(document, '{{status}}',"
        " '\"failed\"') WHERE run_id = %s",
        run_id,
    )


def test_an_entry_changed_after_registration_is_corrupt_and_left_alone(
    registry_site: RegistrySite,
) -> None:
    store = registry_site.open()
    try:
        entry = make_entry()
        store.register(entry)
        _tamper(registry_site, entry.run_id)
        with pytest.raises(CorruptRegistryEntry, match="fingerprint"):
            store.get(entry.run_id)
        listing = store.list_entries(RegistryQuery())
        assert listing.entries == [] and len(listing.problems) == 1
        with pytest.raises(CorruptRegistryEntry):
            store.register(entry)
    finally:
        store.close()


def _write_report(root: Path, i: int, run_id: str) -> Path:
    path = root / f"report-{i}.json"
    path.write_text(json.dumps(report_doc(run_id=run_id)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("same_content", [True, False], ids=["identical", "different"])
def test_racing_registrations_of_one_run_leave_one_entry(
    registry_site: RegistrySite, tmp_path: Path, same_content: bool
) -> None:
    """Four processes register one run id at one instant: exactly one writes."""
    run_id = "race.orders_2026_11_30"
    reports = [_write_report(tmp_path, i, run_id) for i in range(4)]

    def argv(i: int) -> list[str]:
        report = reports[0] if same_content else reports[i]
        return [
            "ops",
            "run-registry",
            "--run-result",
            str(report),
            *registry_site.cli(),
            "--format",
            "json",
        ]

    results = race_at_once(
        argv,
        n=4,
        cwd=tmp_path,
        release=tmp_path / "release",
        env=registry_site.env,
        barrier=CLI_AT,
    )
    created = [r for r in results if r.returncode == 0 and r.report.get("created")]
    assert len(created) == 1, [r.stderr for r in results]
    if same_content:
        assert all(r.returncode == 0 for r in results)
    else:
        assert sorted(r.returncode for r in results) == [0, 1, 1, 1]
        assert all("already registered" in r.stderr for r in results if r.returncode == 1)
    store = registry_site.open()
    try:
        listing = store.list_entries(RegistryQuery())
        assert listing.problems == [] and len(listing.entries) == 1
        assert (
            listing.entries[0].run_result.path == created[0].report["entry"]["run_result"]["path"]
        )
    finally:
        store.close()
    if registry_site.kind == FILES:
        assert [p.name for p in Path(registry_site.value).iterdir()] == [
            "race%2Eorders_2026_11_30__run_registry.json"
        ]
