"""Which datasets a run read and wrote: from ``--input``/``--output``, else from the manifest.

- ``--input NS=NAME`` / ``--output NS=NAME`` name datasets outright. When ``NS``
  is the name of one of the manifest's connections, the dataset is that
  connection's (namespace per the naming spec, ``NAME`` a table on it, columns
  readable); otherwise ``NS`` is taken as the namespace as written (without any
  ``user:password@``).
- Without them, the manifest says: a transfer reads its ``source.table`` (a
  ``query:`` source names no table) and writes its ``target.table``; every
  process reads its ``deps:`` (``<connection>.<table>``).

Given inputs replace the manifest's inputs, given outputs its outputs, each side
on its own. Row counts belong to the *primary* datasets: the transfer's source
and target, or the only input/output given on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from dpone_core.manifest import ProcessSpec, TransferProcess
from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.lineage_naming import (
    DatasetId,
    clean_namespace,
    connection_parts,
    dataset_for_table,
)

__all__ = ["DatasetRef", "datasets_from_manifest", "datasets_from_specs", "parse_dataset_spec"]

Role = Literal["input", "output"]


@dataclass(frozen=True)
class DatasetRef:
    role: Role
    id: DatasetId
    #: The manifest connection's URL and the table on it, when the dataset is one (to read
    #: its columns); None for a namespace given as written.
    url: str | None = None
    table: str | None = None
    #: Whether the run's row counts are this dataset's.
    primary: bool = False


def parse_dataset_spec(text: str, flag: str) -> tuple[str, str]:
    """``NS=NAME`` -> (NS, NAME); the first ``=`` separates them."""
    namespace, sep, name = text.partition("=")
    if not sep or not namespace.strip() or not name.strip():
        raise OpsInputError(
            flag, "", f"expected NAMESPACE=NAME, e.g. postgres=public.orders (got {text!r})"
        )
    return namespace.strip(), name.strip()


def _on_connection(
    role: Role, connection: str, table: str, connections: dict[str, str], field: str
) -> DatasetRef:
    url = connections.get(connection)
    if url is None:
        known = ", ".join(sorted(connections)) or "(none)"
        raise OpsInputError(
            field, connection, f"expected one of the manifest's connections: {known}"
        )
    try:
        parts = connection_parts(url)
    except ValueError as exc:
        raise OpsInputError(f"connections.{connection}", "", str(exc)) from None
    return DatasetRef(role=role, id=dataset_for_table(parts, table), url=url, table=table)


def datasets_from_specs(
    role: Role, specs: list[str], connections: dict[str, str]
) -> list[DatasetRef]:
    """The datasets of ``--input``/``--output`` (``NS`` may name a manifest connection)."""
    flag = f"--{role}"
    found: list[DatasetRef] = []
    for spec in specs:
        namespace, name = parse_dataset_spec(spec, flag)
        if namespace in connections:
            ref = _on_connection(role, namespace, name, connections, flag)
        else:
            ref = DatasetRef(role=role, id=DatasetId(clean_namespace(namespace), name))
        found.append(ref)
    if len(found) == 1:
        found = [replace(found[0], primary=True)]
    return _unique(found)


def _unique(refs: list[DatasetRef]) -> list[DatasetRef]:
    seen: set[DatasetId] = set()
    kept = []
    for ref in refs:
        if ref.id not in seen:
            seen.add(ref.id)
            kept.append(ref)
    return kept


def datasets_from_manifest(
    process_name: str, process: ProcessSpec, connections: dict[str, str]
) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs) the manifest declares for ``process``."""
    field = f"processes.{process_name}"
    inputs: list[DatasetRef] = []
    outputs: list[DatasetRef] = []
    if isinstance(process, TransferProcess):
        if process.source.table is not None:
            ref = _on_connection(
                "input",
                process.source.connection,
                process.source.table,
                connections,
                f"{field}.source.connection",
            )
            inputs.append(replace(ref, primary=True))
        ref = _on_connection(
            "output",
            process.target.connection,
            process.target.table,
            connections,
            f"{field}.target.connection",
        )
        outputs.append(replace(ref, primary=True))
    for connection, table in process.dep_tables():
        inputs.append(_on_connection("input", connection, table, connections, f"{field}.deps"))
    return _unique(inputs), _unique(outputs)
