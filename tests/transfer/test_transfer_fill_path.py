"""The fill path is chosen in one place: ``choose_fill_path``, exhaustively.

The pure function is checked against an independent rule table written by dialect
*name* (the function itself only reads capabilities), over every dialect pair and
every combination of the load's facts. Then the facts themselves are checked on
real endpoints (SQLite files, ``:memory:``, the local PostgreSQL), so that the
engine's one call sees what the table assumes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from transfer_support import sqlite_side

from dpone_core.executor.transfer.connections import Endpoint, open_endpoint
from dpone_core.executor.transfer.dialects import DIALECTS, Dialect, SqliteDialect
from dpone_core.executor.transfer.fill import FillPath, choose_fill_path

ANY = None
F = FillPath

#: (source, target, same_database, table_source, source_is_file, fast_paths) -> path.
#: First matching row wins; ANY matches both values.
RULES: list[tuple[str, str, bool | None, bool | None, bool | None, bool | None, FillPath]] = [
    ("sqlite", "sqlite", True, ANY, ANY, True, F.SAME_DATABASE),
    ("sqlite", "sqlite", True, ANY, ANY, False, F.ROWS_ON_TARGET),
    ("sqlite", "sqlite", False, True, True, True, F.ATTACH),
    ("sqlite", "sqlite", False, ANY, ANY, ANY, F.ROWS_TO_EXECUTEMANY),
    ("postgresql", "postgresql", ANY, ANY, ANY, True, F.COPY_THROUGH),
    ("postgresql", "postgresql", ANY, ANY, ANY, False, F.ROWS_TO_COPY),
    ("sqlite", "postgresql", ANY, ANY, ANY, ANY, F.ROWS_TO_COPY),
    ("postgresql", "sqlite", ANY, ANY, ANY, ANY, F.ROWS_TO_EXECUTEMANY),
]

FLAGS = list(itertools.product([False, True], repeat=4))
CASES = [
    (source, target, *flags)
    for source, target in itertools.product(DIALECTS, DIALECTS)
    for flags in FLAGS
]


def _expected(case: tuple[str, str, bool, bool, bool, bool]) -> tuple[int, FillPath]:
    for index, rule in enumerate(RULES):
        if all(want is ANY or want == got for want, got in zip(rule[:6], case, strict=True)):
            return index, rule[6]
    raise AssertionError(f"no rule covers {case}")


def _choose(case: tuple[str, str, bool, bool, bool, bool]) -> FillPath:
    source, target, same_database, table_source, source_is_file, fast_paths = case
    return choose_fill_path(
        DIALECTS[source],
        DIALECTS[target],
        same_database=same_database,
        table_source=table_source,
        source_is_file=source_is_file,
        fast_paths=fast_paths,
    )


def test_cases_cover_every_dialect_pair_and_fact() -> None:
    assert len(CASES) == len(DIALECTS) ** 2 * 2**4 == 64


@pytest.mark.parametrize(
    "case", CASES, ids=["-".join(str(part) for part in case) for case in CASES]
)
def test_choose_fill_path_follows_the_rule_table(
    case: tuple[str, str, bool, bool, bool, bool],
) -> None:
    assert _choose(case) is _expected(case)[1]


def test_every_rule_is_reached_and_every_path_is_possible() -> None:
    used = {_expected(case)[0] for case in CASES}
    assert used == set(range(len(RULES)))
    assert {_choose(case) for case in CASES} == set(FillPath)


def test_fast_paths_off_leaves_only_row_paths() -> None:
    row_paths = {F.ROWS_ON_TARGET, F.ROWS_TO_COPY, F.ROWS_TO_EXECUTEMANY}
    for case in CASES:
        if not case[5]:
            path = _choose(case)
            assert path in row_paths and not path.in_database, case


@pytest.mark.parametrize(
    ("path", "reads_through_target", "in_database"),
    [
        (F.SAME_DATABASE, True, True),
        (F.ROWS_ON_TARGET, True, False),
        (F.ATTACH, True, True),
        (F.COPY_THROUGH, False, False),
        (F.ROWS_TO_COPY, False, False),
        (F.ROWS_TO_EXECUTEMANY, False, False),
    ],
)
def test_fill_path_properties(
    path: FillPath, reads_through_target: bool, in_database: bool
) -> None:
    assert path.reads_through_target is reads_through_target
    assert path.in_database is in_database


def test_choice_is_by_capability_not_by_name() -> None:
    """A dialect with SQLite's name but without ATTACH gets no ATTACH path."""

    class NoAttach(SqliteDialect):
        attaches_databases = False

    sqlite: Dialect = DIALECTS["sqlite"]
    other: Dialect = NoAttach()
    facts = {"same_database": False, "table_source": True, "source_is_file": True}
    assert choose_fill_path(sqlite, sqlite, fast_paths=True, **facts) is F.ATTACH
    assert choose_fill_path(other, other, fast_paths=True, **facts) is F.ROWS_TO_EXECUTEMANY


# -- the facts, read from real endpoints ---------------------------------------------------


@pytest.fixture
def opened() -> Iterator[list[Endpoint]]:
    endpoints: list[Endpoint] = []
    yield endpoints
    for endpoint in endpoints:
        endpoint.close()


def _open(opened: list[Endpoint], url: str, role: str, base: Path) -> Endpoint:
    endpoint = open_endpoint(
        role, "p", "c", {"c": url}, manifest="m.yml", base_dir=base, read_only=role == "source"
    )
    opened.append(endpoint)
    return endpoint


def _path_for(source: Endpoint, target: Endpoint, *, table: bool, fast: bool = True) -> FillPath:
    return choose_fill_path(
        source.dialect,
        target.dialect,
        same_database=source.same_database(target),
        table_source=table,
        source_is_file=source.is_file,
        fast_paths=fast,
    )


def test_real_sqlite_endpoints(tmp_path: Path, opened: list[Endpoint]) -> None:
    src = sqlite_side(tmp_path / "source.db")
    src.execute("CREATE TABLE t (x integer)")
    sqlite_side(tmp_path / "target.db").execute("CREATE TABLE u (x integer)")
    source = _open(opened, src.url, "source", tmp_path)
    target = _open(opened, "sqlite:///target.db", "target", tmp_path)  # relative to the manifest
    same = _open(opened, "sqlite:///./sub/../source.db", "target", tmp_path)
    memory = _open(opened, "sqlite://", "target", tmp_path)
    assert source.is_file and target.is_file and not memory.is_file
    assert _path_for(source, target, table=True) is F.ATTACH
    assert _path_for(source, target, table=False) is F.ROWS_TO_EXECUTEMANY
    assert source.same_database(same)
    assert _path_for(source, same, table=False) is F.SAME_DATABASE
    assert _path_for(source, same, table=True, fast=False) is F.ROWS_ON_TARGET
    assert not memory.same_database(memory) and not memory.same_database(target)
    assert _path_for(memory, target, table=True) is F.ROWS_TO_EXECUTEMANY


def test_real_postgres_endpoints(pg_url: str, tmp_path: Path, opened: list[Endpoint]) -> None:
    src = sqlite_side(tmp_path / "source.db")
    src.execute("CREATE TABLE t (x integer)")
    pg_source = _open(opened, pg_url, "source", tmp_path)
    pg_target = _open(opened, pg_url, "target", tmp_path)
    sqlite_source = _open(opened, src.url, "source", tmp_path)
    sqlite_target = _open(opened, src.url, "target", tmp_path)
    assert pg_source.same_database(pg_target) and not pg_source.is_file
    assert _path_for(pg_source, pg_target, table=True) is F.COPY_THROUGH
    assert _path_for(pg_source, pg_target, table=True, fast=False) is F.ROWS_TO_COPY
    assert _path_for(sqlite_source, pg_target, table=True) is F.ROWS_TO_COPY
    assert _path_for(pg_source, sqlite_target, table=True) is F.ROWS_TO_EXECUTEMANY
    assert not pg_source.same_database(sqlite_target)
