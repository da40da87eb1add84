"""The ``transfer`` process kind: staging-first, exactly-once loads on SQLite and PostgreSQL.

``run_transfer(process, ctx)`` copies the rows of a source table or query into
a target table (``replace``, ``append``, ``merge`` or ``incremental``). Rows land
in a staging table; one transaction of the target database publishes them and
records the load in the ledger ``_dpone_loads``, so the watermark advances only
with that commit and a load id is never published twice. Modules, one concept
each:

========================  ====================================================
``engine``                the load transaction, start to finish
``connections``           engines, driver connections (``Endpoint``)
``urls``                  connection URLs: plain SQLite ones without SQLAlchemy
``dialects``              what SQLite and PostgreSQL do differently: one
                          ``Dialect`` object each (capabilities, sessions,
                          SQL spelling, catalog reads)
``fill``                  the fill path, chosen once (``choose_fill_path``),
                          and filling staging along it
``names``                 ``schema.table`` names
``shapes``                source columns and target definitions (plain data)
``introspect``            source/target shapes checked against the manifest
``typemap``               type families and the type tables of new targets
``ledger``                ``_dpone_loads``, load ids, watermarks
``ledger_status``         what the ledger says about one load (for checks)
``target_table``          the target's full name and real columns (for catalogs)
``staging``               staging tables
``scratch``               SQLite scratch files that hold staging tables
``extract``               the source query, its snapshot, the row stream
``sqlite_fast``           SQLite -> SQLite without Python in the loop
``pg_copy``               COPY into PostgreSQL
``copy_text``             COPY text of a whole batch of basic values
``prefetch``              a reader thread behind a bounded queue
``strategies``            publishing staging into the target
``progress``              progress lines on stderr
``errors``                ``TransferFailed`` and one-line error messages
``crash``                 the test-only ``DPONE_TEST_CRASH_AT`` hook
========================  ====================================================

The engine never compares dialect names: it asks an endpoint's dialect
(``target.dialect.copy_in``, ``db.dialect.upsert_head(...)``), and the one
decision of how rows reach staging is ``fill.choose_fill_path``.
"""

from dpone_core.executor.transfer.engine import run_transfer
from dpone_core.executor.transfer.ledger import LEDGER_TABLE, load_id_for
from dpone_core.executor.transfer.ledger_status import LedgerLookup, ledger_status
from dpone_core.executor.transfer.target_table import (
    TargetColumnInfo,
    TargetTable,
    declared_table_name,
    target_table,
)

__all__ = [
    "LEDGER_TABLE",
    "LedgerLookup",
    "TargetColumnInfo",
    "TargetTable",
    "declared_table_name",
    "ledger_status",
    "load_id_for",
    "run_transfer",
    "target_table",
]
