"""The ``translation:`` section of a ``defs.yaml`` as a ``DagsterDponeTranslator`` subclass.

Every setting overrides the one translator method that decides it, so code that
asks the translator for a key, a group or a run-id prefix gets the same answer as
the asset specs.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from dpone_dagster.components.settings import DponeTranslationSettings
from dpone_dagster.process import DponeProcess
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["ComponentDponeTranslator"]


class ComponentDponeTranslator(DagsterDponeTranslator):
    """``DagsterDponeTranslator`` plus the settings of a ``translation:`` section.

    * ``key_prefix`` prefixes every table key (so keys *and* deps: lineage stays
      connected) and every command key;
    * ``group_name`` and ``run_id_prefix`` replace the default, with ``{manifest}``
      and ``{selector}`` filled in;
    * ``tags``, ``kinds``, ``owners``, ``metadata`` are added to the default ones;
    * ``automation_condition`` is set on every spec.

    Subclass it (and return the subclass from ``DponeComponent.build_translator``) to
    change more in Python; the settings still apply on top of your methods' answers.
    """

    def __init__(self, settings: DponeTranslationSettings | None = None) -> None:
        self.settings = settings or DponeTranslationSettings()
        prefix = self.settings.key_prefix
        self._prefix: list[str] = [prefix] if isinstance(prefix, str) else list(prefix or [])

    def _prefixed(self, key: dg.AssetKey) -> dg.AssetKey:
        return key.with_prefix(self._prefix) if self._prefix else key

    def _fill(self, template: str, process: DponeProcess) -> str:
        return template.format(manifest=process.manifest_name, selector=process.selector)

    # -- keys: tables through get_table_asset_key, so keys and deps agree ----------------
    def get_table_asset_key(self, connection: str, table: str) -> dg.AssetKey:
        return self._prefixed(super().get_table_asset_key(connection, table))

    def get_asset_key(self, process: DponeProcess) -> dg.AssetKey:
        key = super().get_asset_key(process)
        # A transfer's key is a table key, already prefixed; a command's is not.
        return key if process.is_transfer else self._prefixed(key)

    # -- the rest of the spec ----------------------------------------------------------
    def get_group_name(self, process: DponeProcess) -> str:
        if self.settings.group_name is not None:
            return self._fill(self.settings.group_name, process)
        return super().get_group_name(process)

    def get_owners(self, process: DponeProcess) -> list[str]:
        owners = super().get_owners(process)
        return owners + [owner for owner in self.settings.owners if owner not in owners]

    def get_tags(self, process: DponeProcess) -> dict[str, str]:
        return {**super().get_tags(process), **self.settings.tags}

    def get_kinds(self, process: DponeProcess) -> set[str]:
        return super().get_kinds(process) | set(self.settings.kinds)

    def get_metadata(self, process: DponeProcess) -> dict[str, Any]:
        return {**self.settings.metadata, **super().get_metadata(process)}

    def get_run_id_prefix(self, process: DponeProcess) -> str:
        if self.settings.run_id_prefix is not None:
            return self._fill(self.settings.run_id_prefix, process)
        return super().get_run_id_prefix(process)

    def get_asset_spec(self, process: DponeProcess) -> dg.AssetSpec:
        spec = super().get_asset_spec(process)
        condition = self.settings.automation_condition
        if condition is None:
            return spec
        return spec.replace_attributes(automation_condition=condition)
