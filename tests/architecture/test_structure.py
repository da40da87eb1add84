"""The structure issue 8 promised, checked on every run: short functions, no import
cycles, one error root, a public API that resolves, flags spelled once."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

import dpone_core
import dpone_dagster
from dpone_core.cli import build_parser
from dpone_core.cli_flags import ORCHESTRATE_RUN_FLAGS, orchestrate_run_argv
from dpone_core.errors import DponeError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dpone_core", "dpone_dagster")
MAX_FUNCTION_LINES = 80


def _functions() -> Iterator[tuple[str, int]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                    yield where, node.end_lineno - node.lineno + 1


def test_no_function_is_longer_than_80_lines() -> None:
    long = [f"{where} ({n} lines)" for where, n in _functions() if n > MAX_FUNCTION_LINES]
    assert not long, "split these into named steps:\n" + "\n".join(long)


def _strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Tarjan's algorithm over the import graph restricted to our modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_among_modules() -> None:
    """Function-level (lazy) imports count too: a cycle is a cycle wherever it is spelled.
    Imports under ``TYPE_CHECKING`` never run, so they do not count (as in lint-imports)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    assert _strongly_connected(graph, modules) == []


def _all_modules() -> Iterator[str]:
    for package in (dpone_core, dpone_dagster):
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                yield info.name


def test_every_error_derives_from_the_one_root() -> None:
    """Signals are the documented exception: BaseException, so no ``except Exception`` eats them."""
    interrupts = {"TerminationSignal", "OrchestrationInterrupted"}
    strays = []
    for name in _all_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException):
                continue
            if not issubclass(cls, DponeError) and cls.__name__ not in interrupts:
                strays.append(f"{name}.{cls.__name__}")
    assert strays == []


@pytest.mark.parametrize("package", [dpone_core, dpone_dagster], ids=lambda p: p.__name__)
def test_public_api_resolves(package: object) -> None:
    names = list(package.__all__)  # type: ignore[attr-defined]
    assert names == sorted(set(names), key=names.index)
    for name in names:
        assert getattr(package, name) is not None


def test_dpone_core_all_matches_its_lazy_table() -> None:
    assert set(dpone_core.__all__) == set(dpone_core._EXPORTS)


#: Flags that exclude each other: each pair is rendered in its own command line.
_EXCLUSIVE = (("run_id", "execution_date"), ("output_dir", "output_root"))


@pytest.mark.parametrize("choice", [0, 1])
def test_rendered_argv_parses_back_to_the_same_values(choice: int) -> None:
    """The handoff's command line and the parser share one flag table."""
    values: dict[str, object] = {
        "manifest_path": "m.yml",
        "selector": "orders",
        "run_id": "orders_2026",
        "execution_date": "2026-11-30",
        "retry_attempts": 2,
        "retry_backoff_seconds": 1.5,
        "concurrency_key": "k",
        "lock_dir": "/l",
        "lock_ttl_seconds": 60.0,
        "state_dir": "/s",
        "backend": "postgresql",
        "backend_schema": "dp",
        "resume_policy": "resume",
        "output_dir": "/o",
        "output_root": "/r",
        "schedule": "30 1 * * 1",
        "dag_id": "daily_shop",
        "scheduler": "airflow",
        "scheduler_run_id": "scheduled__2026-11-30T02:00:00+00:00",
        "format": "json",
        "registry": "/reg",
        "lineage": "off",
        "lineage_spool": "/spool",
        "allow_duplicate_load": True,
    }
    assert set(values) == set(ORCHESTRATE_RUN_FLAGS)
    for pair in _EXCLUSIVE:
        del values[pair[1 - choice]]
    args = build_parser().parse_args(orchestrate_run_argv(values))
    dest = {action.option_strings[0]: action.dest for action in _orchestrate_run_actions()}
    for field, flag in ORCHESTRATE_RUN_FLAGS.items():
        assert getattr(args, dest[flag]) == values.get(field), field


def test_exclusive_flags_are_refused_together() -> None:
    for first, second in _EXCLUSIVE:
        values = {"manifest_path": "m.yml", first: "a", second: "2026-11-30"}
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(orchestrate_run_argv(values))
        assert exc.value.code == 2


def _orchestrate_run_actions() -> list[argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    orch = sub.choices["orchestrate"]
    osub = next(a for a in orch._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in osub.choices["run"]._actions if a.option_strings]


def test_both_backends_satisfy_the_protocols(tmp_path: Path) -> None:
    """Structural conformance, checked at run time (mypy checks the signatures)."""
    from dpone_core.backends.protocol import JobStateStore, LockManager, OrchestrationBackend
    from dpone_core.backends.selection import select_backend
    from tests.support.pg import TEST_DSN

    for choice in ("files", TEST_DSN):
        backend = select_backend(choice, lock_dir=tmp_path / "l", state_dir=tmp_path / "s")
        try:
            assert isinstance(backend, OrchestrationBackend)
            assert isinstance(backend.lock_manager, LockManager)
            assert isinstance(backend.job_state_store, JobStateStore)
            assert "password" not in backend.describe()
        finally:
            backend.close()
