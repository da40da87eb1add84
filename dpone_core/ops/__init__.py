"""Operations around a run: the run registry and OpenLineage export (``dpone ops``).

One concept per module; the decisions are pure functions, the I/O sits at the edges:

========================  ====================================================
``errors``                the errors of this package (under ``DponeError``)
``outcome``               a run result file (orchestrated report or plain
                          ``dpone run`` result) read into a ``RunOutcome``
``artifacts``             ``--artifact name=path``: path, size, sha256
``entry``                 ``RegistryEntry`` (the file format), building it,
                          its fingerprint, its file name, queries (pure)
``registry``              the ``RunRegistry`` protocol and the file store
``registry_select``       files or PostgreSQL, from ``--registry``;
                          ``find_registry_entry`` for callers (Dagster)
``lineage_naming``        dataset namespaces and names per the OpenLineage
                          naming spec, never with a password (pure)
``lineage_datasets``      which datasets a run read and wrote: the manifest's
                          source, target and ``deps:``, or ``--input/--output``
``lineage_columns``       the real columns of a dataset (database catalogs)
``lineage``               OpenLineage run events from an entry (pure)
``lineage_spool``         events kept on disk while a server is down
``lineage_emit``          the openlineage-python client's transports, with
                          the spool in front
========================  ====================================================

Nothing here imports Dagster; psycopg only through
:mod:`dpone_core.backends.postgres_registry`.
"""
