"""What the change-feed tests do to a job-state store: real writes, bulk plants, slow writes.

* :func:`commit_run` writes a run's whole lifecycle through the public API (the
  key's lock, then ``started``/``running`` and ``committed`` saves), as an
  orchestrator on another host would, without running a process.
* :func:`plant_committed_states` fills a store with many committed states
  behind its back (files written directly, rows copied in), as years of
  scheduler runs would leave it.
* :class:`SlowRewrite` rewrites a stored state so that the write *completes*
  only when told to, after the test listed newer changes: a state file whose
  bytes are written (and dated) now but renamed into place later, or a
  PostgreSQL transaction that updated the row and commits later.
* :func:`drain` pages through a store until it reports no more changes.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpone_core.backends.protocol import JobStateChanges
from dpone_core.lifecycle import JobStatus
from dpone_core.state import AttemptHolder, JobState, admit_attempt, advance
from tests.support.backends import POSTGRESQL, BackendSite


def commit_run(backend: Any, run_id: str, root: Path) -> JobState:
    """Lock, admit, run and commit ``run_id`` through ``backend``'s public API."""
    outcome = backend.lock_manager.acquire(run_id, run_id=run_id)
    assert outcome.acquired, outcome.message
    try:
        store = backend.job_state_store
        previous = store.load(run_id)
        started = admit_attempt(
            previous,
            run_id=run_id,
            process="job",
            manifest_path=str(root / "m.yml"),
            selector="job",
            lock_key=run_id,
            output_dir=str(root / "out" / run_id),
            holder=AttemptHolder(
                pid=os.getpid(), host=socket.gethostname(), lock_token=outcome.lock.token
            ),
            from_scratch=previous is not None,
        )
        running = advance(started, JobStatus.RUNNING)
        store.save(running)
        committed = advance(running, JobStatus.COMMITTED, run_result={"passed": True})
        store.save(committed)
        return committed
    finally:
        outcome.lock.release()


def drain(store: Any, cursor: str | None, limit: int) -> tuple[list[JobStateChanges], str | None]:
    """Every page from ``cursor`` until the store says there are no more."""
    pages = []
    while True:
        page = store.changed_since(cursor, limit)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


def _documents(template: JobState, n: int, prefix: str) -> Iterator[dict[str, Any]]:
    base = template.model_dump(mode="json")
    for i in range(n):
        run_id = f"{prefix}{i:05d}"
        yield {**base, "run_id": run_id, "lock_key": run_id}


def plant_committed_states(site: BackendSite, template: JobState, n: int, prefix: str) -> None:
    """``n`` committed states like ``template`` (run ids ``<prefix>00000``...), behind the
    store's back."""
    if site.kind == POSTGRESQL:
        _plant_rows(site, template, n, prefix)
        return
    backend = site.open()
    try:
        store = backend.job_state_store
        site.state_dir.mkdir(parents=True, exist_ok=True)
        for doc in _documents(template, n, prefix):
            store.path_for(doc["run_id"]).write_text(json.dumps(doc))
    finally:
        backend.close()


def _plant_rows(site: BackendSite, template: JobState, n: int, prefix: str) -> None:
    from tests.support.pg import admin

    backend = site.open()
    try:
        backend.job_state_store.load("nothing")  # creates the tables on first use
    finally:
        backend.close()
    schema = f'"{site.schema}"'
    with admin() as conn, conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            f"COPY {schema}.job_states (run_id, status, attempt, transition_count, lock_key, "
            "updated_at, document) FROM STDIN"
        ) as copy:
            for doc in _documents(template, n, prefix):
                document = {k: v for k, v in doc.items() if k != "transitions"}
                copy.write_row(
                    (
                        doc["run_id"],
                        doc["status"],
                        doc["attempt"],
                        len(doc["transitions"]),
                        doc["lock_key"],
                        doc["updated_at"],
                        json.dumps(document),
                    )
                )
        with cur.copy(
            f"COPY {schema}.job_state_transitions (run_id, seq, status, attempt, at) FROM STDIN"
        ) as copy:
            for doc in _documents(template, n, prefix):
                for seq, t in enumerate(doc["transitions"], start=1):
                    copy.write_row((doc["run_id"], seq, t["status"], t["attempt"], t["at"]))


class SlowRewrite:
    """Rewrite the stored state of ``run_id`` (same content, a new version), completing late.

    :meth:`begin` does everything but make the write visible; :meth:`finish`
    makes it visible. For files the bytes are written (and so dated) at
    ``begin`` and renamed into place at ``finish``, like a save whose fsync
    stalled; for PostgreSQL the row is updated at ``begin`` and committed at
    ``finish``, like a writer whose commit is slow.
    """

    def __init__(self, site: BackendSite, run_id: str) -> None:
        self.site = site
        self.run_id = run_id
        self._conn: Any = None
        self._tmp: Path | None = None

    def begin(self) -> None:
        if self.site.kind == POSTGRESQL:
            import psycopg

            from tests.support.pg import TEST_DSN

            self._conn = psycopg.connect(TEST_DSN)  # not autocommit: the transaction stays open
            self._conn.execute(
                f'UPDATE "{self.site.schema}".job_states SET document = document '
                "WHERE run_id = %s",
                (self.run_id,),
            )
            return
        backend = self.site.open()
        path = backend.job_state_store.path_for(self.run_id)
        backend.close()
        self._tmp = path.with_name(f".{path.name}.slow.tmp")
        self._tmp.write_bytes(path.read_bytes())

    def finish(self) -> None:
        if self._conn is not None:
            self._conn.commit()
            self._conn.close()
            return
        assert self._tmp is not None
        backend = self.site.open()
        path = backend.job_state_store.path_for(self.run_id)
        backend.close()
        os.replace(self._tmp, path)
