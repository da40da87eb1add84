"""The ``dpone/*`` keys of a materialization, defined once for every producer.

Two producers write them: the Dagster adapter (:mod:`dpone_dagster.metadata`)
and dpone itself when Dagster Pipes launched it (:mod:`dpone_dagster.pipes_report`). Both
import the keys from here, so an asset's metadata means the same whichever way
it was materialized. Plain strings: importing this module costs nothing.
"""

from __future__ import annotations

from typing import Final

STATUS: Final = "dpone/status"
RUN_ID: Final = "dpone/run_id"
ATTEMPT: Final = "dpone/attempt"
TRANSITIONS: Final = "dpone/transitions"
BLOCKERS: Final = "dpone/blockers"
BLOCKER_DETAILS: Final = "dpone/blocker_details"
LOCK_KEY: Final = "dpone/lock_key"
RESUME_POLICY: Final = "dpone/resume_policy"
DECISION: Final = "dpone/decision"
SCHEDULER: Final = "dpone/scheduler"
REGISTRY_ENTRY: Final = "dpone/registry_entry"
EXTRACTED_ROWS: Final = "dpone/extracted_rows"
INSERTED_ROWS: Final = "dpone/inserted_rows"
UPDATED_ROWS: Final = "dpone/updated_rows"
FINAL_ROWS: Final = "dpone/final_rows"
ROW_COUNT: Final = "dagster/row_count"
PARTITION_ROW_COUNT: Final = "dagster/partition_row_count"
TABLE_NAME: Final = "dagster/table_name"
COLUMN_SCHEMA: Final = "dagster/column_schema"
DURATION_SECONDS: Final = "dpone/duration_seconds"
TRIES: Final = "dpone/tries"
ERRORS: Final = "dpone/errors"
LOAD_ID: Final = "dpone/load_id"
WATERMARK_BEFORE: Final = "dpone/watermark_before"
WATERMARK_AFTER: Final = "dpone/watermark_after"
EXIT_CODE: Final = "dpone/exit_code"
PARTITION_KEY: Final = "dpone/partition_key"
WINDOW_START: Final = "dpone/window_start"
WINDOW_END: Final = "dpone/window_end"
REUSED: Final = "dpone/reused"
REPORT: Final = "dpone/report"
REPORT_JSON: Final = "dpone/report_json"
REPORT_MD: Final = "dpone/report_md"
INVOCATION_REPORT_JSON: Final = "dpone/invocation_report_json"
ATTEMPT_REPORT_JSON: Final = "dpone/attempt_report_json"
JOB_STATE_FILE: Final = "dpone/job_state_file"
OUTPUT_DIR: Final = "dpone/output_dir"
FAILURES: Final = "dpone/failures"

#: Every key a materialization or failure may carry, with its meaning.
METADATA_KEYS: dict[str, str] = {
    STATUS: "committed, failed or blocked (the orchestrated run's status)",
    RUN_ID: "the logical run id (names the job state file)",
    ATTEMPT: "the job state's attempt number (counts across resumes)",
    TRANSITIONS: "the job state's whole lifecycle history",
    BLOCKERS: "blocker codes (empty when committed)",
    BLOCKER_DETAILS: "each blocker's code, message and operator action",
    LOCK_KEY: "the concurrency key the run locked",
    RESUME_POLICY: "the resume policy the run was admitted under",
    DECISION: "why the run was admitted or refused",
    REGISTRY_ENTRY: "where the run's run-registry entry is (a registry is configured)",
    SCHEDULER: "who ran the attempt the job state records: cron, airflow (DAG, run), "
    "dagster (run), kubernetes (Job), cli",
    EXTRACTED_ROWS: "rows read from the source",
    INSERTED_ROWS: "rows inserted into the target",
    UPDATED_ROWS: "rows updated in the target",
    FINAL_ROWS: "rows in the target after the load (transfers)",
    DURATION_SECONDS: "wall time of the orchestrated run (lock to evidence)",
    TRIES: "tries of the underlying run (retries inside the run)",
    ERRORS: "the last try's errors (redacted)",
    LOAD_ID: "the load id recorded in the target's ledger (transfers)",
    WATERMARK_BEFORE: "the cursor watermark before the load (incremental)",
    WATERMARK_AFTER: "the cursor watermark committed with the load (incremental)",
    EXIT_CODE: "the command's exit code (commands)",
    PARTITION_KEY: "the Dagster partition key (partitioned assets)",
    WINDOW_START: "the partition window's start, ISO-8601 (partitioned assets)",
    WINDOW_END: "the partition window's end, ISO-8601, exclusive (partitioned assets)",
    REUSED: "true when the run id had already committed in this Dagster run or a "
    "re-execution of it, so the process was not executed again",
    REPORT: "the Markdown runbook of the run",
    REPORT_JSON: "path of orchestrated_run.json (the latest invocation)",
    REPORT_MD: "path of orchestrated_run.md (the latest invocation)",
    INVOCATION_REPORT_JSON: "path of this invocation's immutable JSON report (preferred)",
    ATTEMPT_REPORT_JSON: "the same path as dpone/invocation_report_json (older name, kept)",
    JOB_STATE_FILE: "path of <run id>.job_state.json",
    OUTPUT_DIR: "the evidence directory",
    ROW_COUNT: "rows in the target after the load (= dpone/final_rows; unpartitioned assets)",
    PARTITION_ROW_COUNT: "rows of this partition's window the load read (partitioned assets)",
    TABLE_NAME: "the target as database.schema.table (transfers)",
    COLUMN_SCHEMA: "the target table's columns as the database has them after the load "
    "(transfers)",
    FAILURES: "failures only: asset key, status, run id and blockers of each process "
    "that did not commit",
}

