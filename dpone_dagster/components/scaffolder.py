"""``dg scaffold defs dpone_dagster.components.DponeComponent <path>``: a working ``defs.yaml``.

With ``--manifest PATH`` (repeatable through ``--json-params '{"manifests": [...]}'``)
the ``defs.yaml`` points at existing manifests (paths given relative to where
``dg`` runs are rewritten relative to the new directory). Without, a starter
manifest ``<directory name>.yml`` with one command process is written next to it, so
``dg check defs`` and ``dg dev`` work at once. Every other field is written
commented out, with its default (docs/dagster-components.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import yaml
from pydantic import BaseModel, Field

from dpone_dagster.components.settings import (
    DponeOpSettings,
    DponeResourceSettings,
    DponeTranslationSettings,
)

__all__ = ["DponeComponentScaffolder", "DponeScaffoldParams"]

_STARTER = """\
# A dpone manifest (docs/manifests.md). Every process becomes a Dagster asset.
version: 1
connections: {}
processes:
  hello:
    kind: command
    description: Replace me with your transfers and commands
    command: ["python3", "-c", "print('hello from dpone')"]
    timeout_seconds: 60
"""

_COMMENTED = """\
  # Everything below is optional; the values shown are the defaults.
  # translation:              # the DagsterDponeTranslator knobs
  #   key_prefix: null        # e.g. lake, or [lake, raw]
  #   group_name: null        # default: the manifest's name; may use {manifest}, {selector}
  #   tags: {}
  #   kinds: []
  #   owners: []
  #   metadata: {}
  #   run_id_prefix: null     # default: the selector; e.g. "{manifest}.{selector}"
  #   automation_condition: null   # e.g. "{{ dg.AutomationCondition.eager() }}"
  # op:
  #   tags: {}
  #   pool: null
  #   retry_policy: null      # e.g. {max_retries: 2, delay: 10, backoff: exponential}
  #   max_processes_per_op: 200
  # checks: true              # the dpone_committed asset check on every asset
  # resource_key: dpone
  # resource:                 # the DponeResource; relative paths are relative to this file
  #   lock_dir: null          # default: <project root>/.dpone/locks
  #   state_dir: null         # default: <project root>/.dpone/orchestration-state
  #   output_root: null       # default: <project root>/.dpone/orchestration
  #   lock_ttl_seconds: 3600
  #   retry_attempts: 0
  #   retry_backoff_seconds: 0
  #   resume_policy: fail     # fail | resume | restart
  #   registry: null          # a run-registry directory, or postgresql (docs/operations.md)
  #   backend: null           # files | postgresql (default: postgresql when the DSN is set)
  #   backend_dsn_env: null   # variable holding the PostgreSQL DSN (DPONE_ORCHESTRATION_DSN)
"""

# The commented template must name every field the models have (a test checks it too).
_SECTIONS = (DponeTranslationSettings, DponeOpSettings, DponeResourceSettings)


class DponeScaffoldParams(BaseModel):
    """Parameters of ``dg scaffold defs dpone_dagster.components.DponeComponent``."""

    manifest: str | None = Field(
        default=None, description="An existing manifest file or directory of manifests."
    )
    manifests: list[str] | None = Field(
        default=None, description="Several manifests (use --json-params)."
    )


def starter_manifest_name(target: Path) -> str:
    """``<directory>.yml``: the manifest's name is the assets' group (and a command's key)."""
    return f"{target.name}.yml"


def _relative_to(target: Path, entry: str) -> str:
    path = Path(entry).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    return Path(os.path.relpath(absolute.resolve(), target.resolve())).as_posix()


def defs_yaml_text(type_name: str, manifests: list[str]) -> str:
    """The ``defs.yaml`` text: type, manifests, then every optional field commented out."""
    head = yaml.safe_dump(
        {"type": type_name, "attributes": {"manifests": manifests}},
        sort_keys=False,
        default_flow_style=False,
    )
    return head + _COMMENTED


def component_py_text(type_name: str, manifests: list[str]) -> str:
    """``component.py`` for ``--format python``: the same component, built in Python."""
    module, _, name = type_name.rpartition(".")
    return (
        "import dagster as dg\n\n"
        f"from {module} import {name}\n\n\n"
        "@dg.component_instance\n"
        f"def load(context: dg.ComponentLoadContext) -> {name}:\n"
        "    # Paths are relative to this directory; see docs/dagster-components.md for the rest.\n"
        f"    return {name}(manifests={manifests!r})\n"
    )


class DponeComponentScaffolder(dg.Scaffolder[DponeScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[DponeScaffoldParams]:
        return DponeScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[DponeScaffoldParams]) -> None:
        params = request.params
        # With --append, target_path is the existing defs.yaml, not its directory.
        directory = request.target_path.parent if request.append else request.target_path
        given = [*([params.manifest] if params.manifest else []), *(params.manifests or [])]
        if given:
            manifests = [_relative_to(directory, entry) for entry in given]
        else:
            starter = starter_manifest_name(directory)
            (directory / starter).write_text(_STARTER, encoding="utf-8")
            manifests = [starter]
        if request.scaffold_format == "python":
            (directory / "component.py").write_text(
                component_py_text(request.type_name, manifests), encoding="utf-8"
            )
        elif request.append:  # another document in the existing defs.yaml
            with request.target_path.open("a", encoding="utf-8") as out:
                out.write("---\n" + defs_yaml_text(request.type_name, manifests))
        else:
            (directory / "defs.yaml").write_text(
                defs_yaml_text(request.type_name, manifests), encoding="utf-8"
            )
