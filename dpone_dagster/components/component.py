"""``DponeComponent``: dpone manifests as Dagster assets from a ``defs.yaml`` alone.

The component is a thin layer over the Python API: ``build_defs`` calls
:func:`~dpone_dagster.factory.build_dpone_assets` with a translator made from the
``translation:`` section and the op settings of ``op:``, and binds a
:class:`~dpone_dagster.resource.DponeResource` built from ``resource:`` under
``resource_key``. So a component and a ``definitions.py`` with the same settings
produce the same assets (same keys, ops, run ids, job states).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import dagster as dg
from pydantic import BaseModel, Field, field_validator

from dpone_dagster.components.scaffolder import DponeComponentScaffolder
from dpone_dagster.components.schema import with_field_naming_schema
from dpone_dagster.components.settings import (
    DponeOpSettings,
    DponeResourceSettings,
    DponeTranslationSettings,
    doc,
    resolve_path,
)
from dpone_dagster.components.translator import ComponentDponeTranslator
from dpone_dagster.factory import build_dpone_assets
from dpone_dagster.process import expand_manifest_paths, load_all, processes_of
from dpone_dagster.resource import DponeResource
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["DponeComponent"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dg.scaffold_with(DponeComponentScaffolder)
class DponeComponent(dg.Component, dg.Resolvable, dg.Model):
    """Every process of dpone manifests as a Dagster asset, run through dpone's orchestrator.

    Locks, durable job states, resume and evidence as with ``dpone orchestrate run``;
    one subsettable multi-asset per manifest; the component builds its own
    DponeResource, so a defs.yaml is enough. Reference: docs/dagster-components.md.
    """

    manifests: Annotated[
        list[str],
        doc(
            "Manifest files, or directories of *.yml/*.yaml manifests, relative to this defs.yaml."
        ),
    ] = Field(min_length=1)
    translation: Annotated[
        DponeTranslationSettings | None,
        doc("Keys, groups, tags, kinds, owners... of the assets (the translator's knobs)."),
    ] = None
    op: Annotated[
        DponeOpSettings | None,
        doc("Tags, pool, retry policy and size of the ops."),
    ] = None
    checks: Annotated[bool, doc("Add the dpone_committed asset check to every asset.")] = True
    resource_key: Annotated[
        str, doc("Key of the DponeResource the component binds and its assets require.")
    ] = "dpone"
    resource: Annotated[
        DponeResourceSettings | None,
        doc("The DponeResource: locks, job states, evidence, retries, backend."),
    ] = None

    @field_validator("manifests", mode="before")
    @classmethod
    def _one_manifest(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("resource_key")
    @classmethod
    def _resource_key(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a valid resource key (a Python identifier)")
        return value

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        """Dagster's model of the attributes, with a schema that names a typo'd field."""
        model = super().get_model_cls()
        assert model is not None  # a Resolvable always has one
        return with_field_naming_schema(model)

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(
            description="dpone manifests as Dagster assets, run through dpone's orchestrator "
            "(locks, durable job states, resume, evidence).",
            tags=["dpone", "elt"],
            produces=["asset", "asset_check", "resource"],
        )

    # -- the pieces, each overridable in a subclass ------------------------------------
    def build_translator(self) -> DagsterDponeTranslator:
        """The translator of the assets: ``translation:`` over ``DagsterDponeTranslator``.

        Override to return a subclass of :class:`ComponentDponeTranslator` for more.
        """
        return ComponentDponeTranslator(self.translation)

    def manifest_paths(self, context: dg.ComponentLoadContext) -> list[Path]:
        """``manifests:`` as absolute paths (relative to the component's directory).

        Each must exist: a missing one is named with its index, as written and resolved.
        """
        base = component_dir(context)
        paths = []
        for index, entry in enumerate(self.manifests):
            path = resolve_path(base, entry)
            if not path.exists():
                raise dg.DagsterInvalidDefinitionError(
                    f"dpone component {base}: manifests[{index}] {entry!r} does not exist "
                    f"({path}); relative paths are relative to the directory of the defs.yaml"
                )
            paths.append(path)
        return paths

    def build_resource(self, context: dg.ComponentLoadContext) -> DponeResource:
        settings = self.resource or DponeResourceSettings()
        return settings.to_resource(component_dir(context), context.project_root)

    def build_assets(self, context: dg.ComponentLoadContext) -> list[dg.AssetsDefinition]:
        op = self.op or DponeOpSettings()
        paths = self.manifest_paths(context)
        if op.pool is not None:
            _check_pool(op.pool, paths)
        return build_dpone_assets(
            paths,
            self.build_translator(),
            resource_key=self.resource_key,
            checks=self.checks,
            op_tags=op.op_tags() or None,
            retry_policy=op.retry_policy.to_retry_policy() if op.retry_policy else None,
            max_processes_per_op=op.max_processes_per_op,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(
            assets=self.build_assets(context),
            resources={self.resource_key: self.build_resource(context)},
        )


def component_dir(context: dg.ComponentLoadContext) -> Path:
    """The directory of the ``defs.yaml`` (or ``component.py``): the base of relative paths."""
    path = Path(context.path)
    return path if path.is_dir() else path.parent


def _check_pool(pool: str, paths: list[Path]) -> None:
    """``op.pool`` is every op's pool: refuse a process whose concurrency_key is another pool."""
    for loaded in load_all(expand_manifest_paths(paths)):
        for process in processes_of(loaded):
            key = process.spec.concurrency_key
            if key is not None and key != pool:
                raise dg.DagsterInvalidDefinitionError(
                    f"op.pool {pool!r} conflicts with process {process.selector!r} of "
                    f"{loaded.path}, whose concurrency_key {key!r} is its op's pool; remove "
                    "op.pool, or give that process concurrency_key: " + repr(pool)
                )
