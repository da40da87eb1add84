"""Dagster Components for dpone: ``dg list components`` / ``dg scaffold defs`` / ``defs.yaml``.

Registered for ``dg`` through the ``dagster_dg_cli.registry_modules`` entry point
(``pyproject.toml``), so the component's type name is
``dpone_dagster.components.DponeComponent``. Reference: docs/dagster-components.md.

Only component types are imported here: ``dg`` lists every scaffoldable object
this module exposes.
"""

from dpone_dagster.components.component import DponeComponent

__all__ = ["DponeComponent"]
