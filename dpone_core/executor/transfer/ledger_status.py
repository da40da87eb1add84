"""What the target's ledger says about one load, for checks that verify a commit.

Reads the target read-only through the engine's own connection and ledger code,
so a checker and the loader can never disagree on where the ledger lives.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpone_core.manifest import TransferProcess, load_manifest
from dpone_core.redact import redact

__all__ = ["LedgerLookup", "ledger_status"]


@dataclass(frozen=True)
class LedgerLookup:
    """``status`` is the ledger's status of the load (None when absent or unreadable)."""

    status: str | None
    detail: str
    #: False when the target or its ledger could not be read (then nobody knows).
    readable: bool = True


def ledger_status(manifest_path: str, selector: str, load_id: str) -> LedgerLookup:
    """The ledger status of ``load_id`` in the process's target database.

    Never raises for a database problem: an unreachable target is an answer
    ("cannot open the target ..."), so a check fails instead of crashing.
    """
    from dpone_core.executor.transfer.connections import open_target_for_reading
    from dpone_core.executor.transfer.ledger import LEDGER_TABLE, find_load
    from dpone_core.executor.transfer.names import TableName

    loaded = load_manifest(manifest_path)
    _, process = loaded.select(selector)
    if not isinstance(process, TransferProcess):
        return LedgerLookup(None, "not a transfer: no ledger")
    ledger = TableName.parse(
        process.target.table, file=str(loaded.path), field=f"processes.{selector}.target.table"
    ).sibling(LEDGER_TABLE)
    try:
        target = open_target_for_reading(loaded, selector, process.target.connection)
    except Exception as exc:
        reason = redact(f"cannot open the target to read the ledger: {exc}")
        return LedgerLookup(None, reason, readable=False)
    try:
        row = find_load(target, ledger, load_id)
    except Exception as exc:
        reason = redact(f"cannot read the ledger {ledger.display}: {exc}")
        return LedgerLookup(None, reason, readable=False)
    finally:
        target.close()
    if row is None:
        return LedgerLookup(None, f"load {load_id} is not in the ledger {ledger.display}")
    detail = f"load {load_id} is {row.status} in the ledger {ledger.display}"
    return LedgerLookup(row.status, detail)
