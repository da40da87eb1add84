"""Dagster: a complete definitions file with a partitioned asset, its job and schedule.

One partition is one logical run: the partitions follow the schedule in UTC with
``end_offset=1``, so the schedule's tick at 02:00 on 2026-11-30 materializes
partition ``2026-11-30``, the date cron and Kubernetes see with ``date -u``; the
asset passes the partition key as ``--execution-date``. The asset is named after
the process (``<manifest>/<process>``), never after a run id.

The command runs through Dagster Pipes (``PipesSubprocessClient``): stopping the
Dagster run terminates dpone, which records the attempt as ``failed`` instead of
leaving it ``running``, and dpone reports its outcome back as the
materialization's ``dpone/*`` metadata.
"""

from __future__ import annotations

from dpone_core.cli_flags import flag
from dpone_core.handoff.names import python_identifier
from dpone_core.handoff.shell import env_comment
from dpone_core.schedule import Period

__all__ = ["render_dagster_file"]


def render_dagster_file(
    name: str,
    namespace: str,
    command: list[str],
    working_dir: str | None,
    period: Period,
    env_refs: dict[str, str],
    schedule: str,
    start: str,
) -> str:
    """The file: ``dagster dev -f <file>`` or a code location loads it as it is."""
    asset = python_identifier(name)
    key = [python_identifier(namespace), asset]
    fmt = "%Y-%m-%d" if period is Period.DAY else "%Y-%m-%dT%H:%M"
    # Dagster parses the start with the partitions' own format.
    start = start if period is Period.DAY else f"{start}T00:00"
    lines = [
        f"# dpone scheduler handoff: Dagster definitions for process {name!r} of {namespace!r}.",
        "# Each partition is one logical run (its key is the logical date in UTC); stopping a",
        "# run reaches dpone through Dagster Pipes, and dpone's outcome comes back as metadata.",
        "",
        "import dagster as dg",
        "",
        *env_comment(env_refs, "where the code server and run workers run"),
        f"COMMAND = {command!r}",
        f"WORKING_DIR = {working_dir!r}",
        "PARTITIONS = dg.TimeWindowPartitionsDefinition(",
        f"    cron_schedule={schedule!r},",
        f"    start={start!r},",
        f"    fmt={fmt!r},",
        "    timezone='UTC',",
        "    end_offset=1,  # the tick's own date is its partition (the logical date)",
        ")",
        "",
        "",
        f"@dg.asset(key={key!r}, partitions_def=PARTITIONS, kinds={{'dpone'}})",
        f"def {asset}(context, pipes_subprocess_client: dg.PipesSubprocessClient):",
        "    command = [",
        "        *COMMAND,",
        f"        {flag('execution_date')!r},",
        "        context.partition_key,",
        f"        {flag('scheduler')!r},",
        "        'dagster',",
        f"        {flag('scheduler_run_id')!r},",
        "        context.run.run_id,",
        "    ]",
        "    return pipes_subprocess_client.run(",
        "        command=command, context=context, cwd=WORKING_DIR",
        "    ).get_materialize_result()",
        "",
        "",
        f"{asset}_job = dg.define_asset_job({asset + '_job'!r}, selection=[{asset}])",
        "",
        "defs = dg.Definitions(",
        f"    assets=[{asset}],",
        f"    jobs=[{asset}_job],",
        f"    schedules=[dg.build_schedule_from_partitioned_job({asset}_job)],",
        "    resources={'pipes_subprocess_client': dg.PipesSubprocessClient()},",
        ")",
        "",
    ]
    return "\n".join(lines)
