"""Where locks and job states live when one host is not enough.

The default backend is local files (:mod:`dpone_core.locks`,
:mod:`dpone_core.state`). This package adds a PostgreSQL backend for
deployments whose schedulers run on several hosts, and :mod:`.selection`,
which picks one from ``--backend`` / ``DPONE_ORCHESTRATION_DSN``.

Nothing here is imported by ``dpone --help`` or by the file backend: the
PostgreSQL modules import psycopg, so :mod:`.selection` loads them only when a
DSN is actually selected. :mod:`.errors` is dependency-free on purpose, so
the CLI can catch backend errors without importing a driver.
"""
