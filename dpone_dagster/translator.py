"""DagsterDponeTranslator: how a manifest process becomes a Dagster ``AssetSpec``.

Subclass it and override one method to change one thing (the key, the group, ...)
or :meth:`DagsterDponeTranslator.get_asset_spec` to change everything at once,
in the style of ``DagsterSlingTranslator`` and ``DagsterDltTranslator``.

Two rules keep definitions fast and safe:

* **Per-asset metadata stays small**: the manifest path and hash, the selector,
  the strategy, source and target names -- never the whole manifest. A copy of the
  whole config in every asset makes building and serializing definitions quadratic
  in the number of processes.
* **No connection URL ever reaches a spec**: only connection *names* and dialects
  (see :mod:`dpone_dagster.process`), so a password cannot end up in the
  repository snapshot the code server sends.
"""

from __future__ import annotations

import re
from typing import Any

import dagster as dg

from dpone_core.manifest import CommandProcess, TransferProcess
from dpone_dagster.metadata import definition_metadata
from dpone_dagster.partitions import partitions_definition
from dpone_dagster.process import DponeProcess

__all__ = ["DagsterDponeTranslator"]

_GROUP_INVALID = re.compile(r"[^A-Za-z0-9_]")


def _group_name(text: str) -> str:
    """Dagster group names are ``[A-Za-z0-9_]+``; map everything else to ``_``."""
    return _GROUP_INVALID.sub("_", text) or "dpone"


class DagsterDponeTranslator:
    """Maps a :class:`~dpone_dagster.process.DponeProcess` to an ``AssetSpec``.

    Defaults:

    * key -- a transfer's *target table* (``[connection, *table parts]``, e.g.
      ``warehouse/landing_orders``); a command's ``[manifest name, selector]``;
    * deps -- a transfer's *source table* under the same naming, so a process that
      reads another process's target depends on it, across manifests too, plus
      the process's declared ``deps:`` (``<connection>.<table>``: lineage for
      ``query:`` sources and commands);
    * group -- the manifest name; description, owners and tags from the manifest;
    * kinds -- ``dpone`` plus the target's dialect (``sqlite``, ``postgres``) or
      ``command``;
    * metadata -- manifest path and hash, selector, kind, strategy, source, target.

    Override :meth:`get_table_asset_key` (not :meth:`get_asset_key`) to rename
    tables: keys and deps both go through it, so lineage stays connected.
    """

    # -- the one call the decorator makes ------------------------------------------
    def get_asset_spec(self, process: DponeProcess) -> dg.AssetSpec:
        """The full spec of one process's asset; composes the methods below."""
        return dg.AssetSpec(
            key=self.get_asset_key(process),
            deps=self.get_deps(process),
            description=self.get_description(process),
            group_name=self.get_group_name(process),
            owners=self.get_owners(process),
            tags=self.get_tags(process),
            kinds=self.get_kinds(process),
            metadata=self.get_metadata(process),
            code_version=self.get_code_version(process),
            automation_condition=self.get_automation_condition(process),
        )

    # -- the pieces ----------------------------------------------------------------
    def get_table_asset_key(self, connection: str, table: str) -> dg.AssetKey:
        """The key of a table: the connection name, then each part of ``schema.table``.

        Connection names stand for databases: manifests that share a database should
        give it the same connection name, so that their lineage connects.
        """
        return dg.AssetKey([connection, *table.split(".")])

    def get_asset_key(self, process: DponeProcess) -> dg.AssetKey:
        """A transfer is its target table; a command ``command/<manifest>/<process>``.

        Commands get a namespace of their own, so a command never reads as (or
        collides with) a table of a connection named like its manifest.
        """
        spec = process.spec
        if isinstance(spec, TransferProcess):
            return self.get_table_asset_key(spec.target.connection, spec.target.table)
        return dg.AssetKey(["command", process.manifest_name, process.selector])

    def get_deps(self, process: DponeProcess) -> list[dg.AssetKey]:
        spec = process.spec
        deps: list[dg.AssetKey] = []
        if isinstance(spec, TransferProcess) and spec.source.table is not None:
            deps.append(self.get_table_asset_key(spec.source.connection, spec.source.table))
        for connection, table in spec.dep_tables():
            key = self.get_table_asset_key(connection, table)
            if key not in deps:
                deps.append(key)
        return deps

    def get_group_name(self, process: DponeProcess) -> str:
        return _group_name(process.manifest_name)

    def get_description(self, process: DponeProcess) -> str:
        spec = process.spec
        if spec.description:
            return spec.description
        if isinstance(spec, TransferProcess):
            source = (
                f"{spec.source.connection}.{spec.source.table}"
                if spec.source.table is not None
                else f"a query on {spec.source.connection}"
            )
            return (
                f"dpone {spec.strategy.mode} transfer from {source} into "
                f"{spec.target.connection}.{spec.target.table}"
            )
        return f"dpone command process {process.selector!r} of {process.manifest_name}"

    def get_owners(self, process: DponeProcess) -> list[str]:
        return list(process.spec.owners)

    def get_tags(self, process: DponeProcess) -> dict[str, str]:
        return dict(process.spec.tags)

    def get_kinds(self, process: DponeProcess) -> set[str]:
        spec = process.spec
        if isinstance(spec, CommandProcess):
            return {"dpone", "command"}
        return {"dpone", process.dialects.get(spec.target.connection, "sql")}

    def get_code_version(self, process: DponeProcess) -> str | None:
        """A hash of the process's own spec, so editing it marks only this asset changed."""
        return process.spec_hash

    def get_metadata(self, process: DponeProcess) -> dict[str, Any]:
        """Small, definition-time metadata (shown on the asset's page).

        :func:`dpone_dagster.metadata.definition_metadata`: manifest path and hash,
        selector, kind; strategy, source, target and table name for transfers;
        concurrency key and partitions when set.
        """
        return definition_metadata(process)

    def get_automation_condition(
        self, process: DponeProcess
    ) -> dg.AutomationCondition[Any] | None:
        """Declarative automation for the asset (none by default: schedules or sensors run it).

        For example ``dg.AutomationCondition.on_cron("0 2 * * *")`` for every asset, or
        ``eager()`` for processes that follow their upstream tables.
        """
        return None

    def get_partitions_def(self, process: DponeProcess) -> dg.PartitionsDefinition[Any] | None:
        """The asset's partitions: the manifest's ``partitions:`` block by default.

        Dagster sets partitions per op, so processes built into one op must agree;
        ``build_dpone_assets`` groups processes by what this returns.
        """
        spec = process.spec.partitions
        return partitions_definition(spec) if spec is not None else None

    def get_run_id_prefix(self, process: DponeProcess) -> str:
        """The start of every run id of this process: ``<manifest>.<process>``.

        A partition's run id is ``<prefix>_<logical date>`` (``shop.orders_2026_11_30``),
        the one ``dpone orchestrate run --execution-date 2026-11-30`` and every scheduler
        handoff derive, so a logical run is admitted once whoever runs it. Run ids name
        job states: override this only with care (two processes with one prefix would
        share states; a changed prefix loses the old states).
        """
        return f"{process.manifest_name}.{process.selector}"
