"""Helpers of the Components tests: a copy of the example ``dg`` project, the real ``dg`` CLI.

The copy keeps the repository's layout (``examples/dg_project`` two levels below
``manifests/`` and ``scripts/``), so the example's ``defs.yaml`` works unchanged:
its manifests, ``data/`` and ``.dpone/`` all land in the test's directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DG = str(BIN / "dg")
TYPE = "dpone_dagster.components.DponeComponent"
EXAMPLE = Path("examples") / "dg_project"
EXAMPLE_DEFS = EXAMPLE / "dpone_example" / "defs" / "shop" / "defs.yaml"


def copy_example(root: Path) -> Path:
    """The example project, the manifests and the shop's scripts under ``root``; the project."""
    shutil.copytree(
        REPO / EXAMPLE,
        root / EXAMPLE,
        ignore=shutil.ignore_patterns("__pycache__", ".dpone"),
    )
    shutil.copytree(REPO / "manifests", root / "manifests")
    (root / "scripts").mkdir()
    for name in ("seed_shop.py", "landing_report.py"):
        shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
    return root / EXAMPLE


def seed_shop(root: Path) -> None:
    """The example source database, small: 20 customers, 100 orders."""
    proc = subprocess.run(
        [sys.executable, "scripts/seed_shop.py", "--customers", "20", "--orders", "100"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def dg_env(root: Path) -> dict[str, str]:
    """The test's Dagster home, the venv's tools first on PATH, no DPONE_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPONE_")}
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_DISABLE_TELEMETRY="yes",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="200",
    )
    return env


def run_dg(project: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``dg <args>`` in ``project`` (the real CLI, as a user runs it)."""
    return subprocess.run(
        [DG, *args],
        cwd=project,
        env=dg_env(project.parents[1]),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def loaded_project(project: Path) -> Iterator[dg.Definitions]:
    """The project's definitions, loaded in this process as its code location loads them."""
    sys.path.insert(0, str(project))
    try:
        yield dg.load_from_defs_folder(path_within_project=project)
    finally:
        sys.path.remove(str(project))
        for name in [n for n in sys.modules if n.split(".")[0] == "dpone_example"]:
            del sys.modules[name]


#: What Dagster itself adds to the specs of every component (not dpone's doing).
COMPONENT_METADATA = ("dagster/component_origin", "dagster/code_references")


def specs_by_key(assets: list[dg.AssetsDefinition]) -> dict[str, dg.AssetSpec]:
    """Asset key -> spec, without the metadata Dagster adds to a component's specs."""
    return {
        spec.key.to_user_string(): spec.replace_attributes(
            metadata={k: v for k, v in spec.metadata.items() if k not in COMPONENT_METADATA}
        )
        for a in assets
        for spec in a.specs
    }


def code_reference_paths(spec: dg.AssetSpec) -> list[str]:
    value = spec.metadata.get("dagster/code_references")
    if value is None:
        return []
    return [ref.file_path for ref in value.code_references]
