"""The CLI's surface: fast, Dagster-free help; docs/cli.md lists every flag of the parser."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from dpone_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["--help"], ["orchestrate", "run", "--help"], ["run", "--help"]])
def test_help_imports_neither_dagster_nor_sqlalchemy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from dpone_core.cli import main\n"
        f"sys.argv = ['dpone', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dagster', 'sqlalchemy', 'pydantic', 'yaml'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    assert "usage: dpone" in out.stdout


def test_import_dpone_core_leaves_dagster_out() -> None:
    code = (
        "import sys, dpone_core, dpone_core.run, dpone_core.cli, dpone_core.executor\n"
        "print(any(m.split('.')[0] == 'dagster' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _flags(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], set[str]]:
    found: dict[tuple[str, ...], set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_flags(sub, (*path, name)))
        else:
            found.setdefault(path, set()).update(
                o for o in action.option_strings if o.startswith("--") and o != "--help"
            )
    return found


def test_docs_cli_lists_every_command_and_flag() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    sections = doc.split("\n## ")
    for path, flags in _flags(build_parser()).items():
        if not path or not flags:
            continue
        title = "`dpone " + " ".join(path) + "`"
        matching = [s for s in sections if s.startswith(title)]
        assert matching, f"docs/cli.md has no section {title}"
        text = matching[0]
        if path == ("orchestrate", "run"):
            text += next(s for s in sections if s.startswith("`dpone run`"))
        for flag in flags:
            assert f"`{flag}" in text, f"{flag} of {title} is not documented"


def test_docs_orchestration_lists_every_blocker_with_its_runbook() -> None:
    from dpone_core.blockers import ACTIONS

    doc = (ROOT / "docs" / "orchestration.md").read_text()
    runbook = doc.split("## Blockers and their runbooks", 1)[1]
    for code in ACTIONS:
        assert f"| `{code}` |" in runbook, f"{code} has no runbook row in docs/orchestration.md"
