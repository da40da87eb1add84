"""``JobStateStore.changed_since``: the change feed, on both backends.

Pages come in a stable order and end; a state written while a reader pages is
never skipped, even when its write completes after the reader listed newer
ones; unreadable states are listed as such and skipped; ten thousand states
page in bounded time and memory; a cursor of another store is refused.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from typing import Any

import pytest

from dpone_core.errors import DponeUsageError
from dpone_core.lifecycle import JobStatus
from tests.support.backends import BackendSite, FaultInjector
from tests.support.state_feed import (
    SlowRewrite,
    commit_run,
    drain,
    plant_committed_states,
)


def _run_ids(pages: list[Any]) -> list[str]:
    return [state.run_id for page in pages for state in page.states]


def test_pages_come_in_a_stable_order_and_end(backend_site: BackendSite, backend: Any) -> None:
    store = backend.job_state_store
    empty = store.changed_since(None, 10)
    assert (empty.states, empty.unreadable, empty.more) == ([], [], False)
    for run_id in ("r1", "r2", "r3"):
        commit_run(backend, run_id, backend_site.root)

    first = store.changed_since(empty.cursor, 2)
    assert [s.run_id for s in first.states] == ["r1", "r2"] and first.more
    second = store.changed_since(first.cursor, 2)
    assert [s.run_id for s in second.states] == ["r3"] and not second.more
    assert all(s.status is JobStatus.COMMITTED for s in [*first.states, *second.states])
    assert store.changed_since(second.cursor, 2).states == []
    # Reading again from the start gives the same order: the order is the store's, stable.
    assert _run_ids(drain(store, None, 1)[0]) == ["r1", "r2", "r3"]
    # A listed state is the stored one, and listing never disturbs a writer's compare-and-set.
    assert first.states[0] == backend_site.load("r1")
    commit_run(backend, "r1", backend_site.root)  # a restart of r1, listed again
    again = store.changed_since(second.cursor, 10)
    assert [(s.run_id, s.attempt) for s in again.states] == [("r1", 2)]


def test_a_state_saved_while_paging_is_never_skipped(
    backend_site: BackendSite, backend: Any
) -> None:
    """A writer commits runs (through its own backend object) while a reader pages."""
    writer = backend_site.open()
    run_ids = [f"w{i:02d}" for i in range(25)]
    done = threading.Event()

    def write() -> None:
        try:
            for run_id in run_ids:
                commit_run(writer, run_id, backend_site.root)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    latest: dict[str, Any] = {}
    cursor: str | None = None
    try:
        while True:
            finished = done.is_set()
            page = backend.job_state_store.changed_since(cursor, 2)
            cursor = page.cursor
            for state in page.states:
                latest[state.run_id] = state
            if finished and not page.more:
                break
    finally:
        thread.join()
        writer.close()
    assert sorted(latest) == run_ids
    assert {state.status for state in latest.values()} == {JobStatus.COMMITTED}


def test_a_write_completing_after_newer_ones_were_listed_is_not_skipped(
    backend_site: BackendSite, backend: Any
) -> None:
    """The slow write began first (its file dated, or its row numbered, before the newer
    write); it completes only after a reader listed past the newer write's time."""
    store = backend.job_state_store
    root = backend_site.root
    commit_run(backend, "slow", root)
    _, cursor = drain(store, None, 10)

    slow = SlowRewrite(backend_site, "slow")
    slow.begin()
    time.sleep(0.05)  # the newer write is dated strictly later
    newer = threading.Thread(target=commit_run, args=(backend_site.open(), "newer", root))
    newer.start()
    try:
        newer.join(timeout=1.0)  # files: done at once; PostgreSQL: waits for the slow commit
        pages, cursor = drain(store, cursor, 10)
        before = _run_ids(pages)
        assert "slow" not in before
    finally:
        slow.finish()
        newer.join(timeout=30)
    pages, _ = drain(store, cursor, 10)
    after = _run_ids(pages)
    assert "slow" in after
    assert sorted(set(before + after)) == ["newer", "slow"]


def test_unreadable_states_are_listed_and_skipped_not_fatal(
    backend_site: BackendSite, backend: Any, faults: FaultInjector
) -> None:
    store = backend.job_state_store
    commit_run(backend, "good1", backend_site.root)
    faults.corrupt_state("bad")
    raw = faults.raw_state("bad")
    commit_run(backend, "good2", backend_site.root)

    pages, cursor = drain(store, None, 10)
    assert _run_ids(pages) == ["good1", "good2"]
    [unreadable] = [u for page in pages for u in page.unreadable]
    assert unreadable.location == store.location("bad")
    assert unreadable.reason
    # Reported once, never rewritten, and paging goes on past it.
    assert store.changed_since(cursor, 10).unreadable == []
    assert faults.raw_state("bad") == raw
    commit_run(backend, "good3", backend_site.root)
    assert [s.run_id for s in store.changed_since(cursor, 10).states] == ["good3"]


def _page_through(store: Any, limit: int) -> tuple[list[str], int, str | None]:
    """Run ids of every page from the start, the peak memory of paging, the last cursor.

    Only the run ids are kept, as a consumer (the sensor) would: what is measured is
    the store's own memory, not pages the test holds on to.
    """
    run_ids: list[str] = []
    cursor: str | None = None
    tracemalloc.start()
    try:
        while True:
            page = store.changed_since(cursor, limit)
            run_ids += [state.run_id for state in page.states]
            cursor = page.cursor
            if not page.more:
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return run_ids, peak, cursor


def test_ten_thousand_states_page_in_bounded_memory(
    backend_site: BackendSite, backend: Any
) -> None:
    """Paging holds one page, not the store: ten times the states, about the same peak."""
    store = backend.job_state_store
    template = commit_run(backend, "template", backend_site.root)
    plant_committed_states(backend_site, template, 1_000, prefix="a")
    small, small_peak, _ = _page_through(store, 500)
    assert len(small) == len(set(small)) == 1_001

    plant_committed_states(backend_site, template, 9_000, prefix="b")
    listed, peak, cursor = _page_through(store, 500)
    assert len(listed) == len(set(listed)) == 10_001
    # Linear memory would be about 10x; one page's worth stays well under 3x.
    assert peak < 3 * small_peak, (peak, small_peak)
    # The cursor stays small: the newest listed position plus, for files, a 12-byte
    # digest of each version written within the margin before it (all 10k, here).
    assert cursor is not None and len(cursor) < 200_000
    assert store.changed_since(cursor, 500).states == []


def test_a_cursor_of_another_store_is_refused(backend_site: BackendSite, backend: Any) -> None:
    store = backend.job_state_store
    commit_run(backend, "r1", backend_site.root)
    cursor = store.changed_since(None, 10).cursor

    other_site = _other_site(backend_site)
    other = other_site.open()
    try:
        with pytest.raises(DponeUsageError, match="cursor"):
            other.job_state_store.changed_since(cursor, 10)
    finally:
        other.close()
        if other_site.schema is not None:
            from tests.support.pg import drop_schema

            drop_schema(other_site.schema)
    for foreign in ("files:1:{}", "pg:1:1:1", "not a cursor"):
        with pytest.raises(DponeUsageError, match="cursor"):
            store.changed_since(foreign, 10)


def _other_site(site: BackendSite) -> BackendSite:
    if site.schema is None:
        return BackendSite(site.kind, site.root / "elsewhere")
    from tests.support.pg import new_schema

    return BackendSite(site.kind, site.root, schema=new_schema())
