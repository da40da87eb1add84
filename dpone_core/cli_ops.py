"""``dpone ops``: the run registry and OpenLineage export on the command line (argparse only).

:func:`add_ops_commands` adds the ``ops`` commands to ``dpone``'s parser,
:func:`add_orchestrate_run_flags` the ``--registry``/``--lineage`` flags of
``dpone orchestrate run``, :func:`run_ops_command` runs an ``ops`` command and
:func:`after_orchestrated_run` registers and exports a finished orchestrated run.
Like :mod:`dpone_core.cli`, this module imports only argparse at start-up; the
work is in :mod:`dpone_core.ops`. Exit codes: 0 done; 1 a conflicting or corrupt
registry entry, an unreachable registry; 2 invalid input (one line naming the
file or flag, the field and what was expected).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from dpone_core import defaults
from dpone_core.cli_flags import flag

if TYPE_CHECKING:
    from dpone_core.ops.entry import RegistryEntry
    from dpone_core.ops.registry import RunRegistry

__all__ = [
    "add_ops_commands",
    "add_orchestrate_run_flags",
    "after_orchestrated_run",
    "run_ops_command",
]

EXIT_OK = 0
EXIT_FAILED = 1
DEFAULT_REGISTRY_DIR = ".dpone/run-registry"
DEFAULT_SPOOL_DIR = ".dpone/lineage-spool"
REGISTRY_HELP = (
    "where entries live: a directory (default: %(default)s), 'postgresql' (the PostgreSQL "
    "backend, DSN from DPONE_ORCHESTRATION_DSN) or a postgresql:// URL"
)
SPOOL_HELP = "where events wait while the lineage server is unreachable (default: %(default)s)"
CONFIG_HELP = (
    "an openlineage.yml handed to the OpenLineage client (default: the client's own discovery: "
    "OPENLINEAGE_URL, OPENLINEAGE_CONFIG, ./openlineage.yml, ~/.openlineage/openlineage.yml)"
)


def _format_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["json", "md"], default=defaults.REPORT_FORMAT)


def _registry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", default=DEFAULT_REGISTRY_DIR, help=REGISTRY_HELP)
    p.add_argument(
        "--backend-schema", help="PostgreSQL schema of dpone's tables (PostgreSQL registry)"
    )


def _parent_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parent-run",
        help="the run that started this one, <namespace>/<job name>/<run uuid> (default: "
        "OPENLINEAGE_PARENT_ID)",
    )


def _add_run_registry(ops: Any) -> None:
    p = ops.add_parser(
        "run-registry",
        help="register a run result with named artifacts (one immutable entry per run)",
        description="Register a run result (orchestrated_run.json or a `dpone run` JSON "
        "result) with named artifacts as one immutable entry per run id and attempt.",
    )
    p.add_argument("--run-result", required=True, help="the run result JSON file")
    p.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a named file recorded with its size and sha256 (repeatable)",
    )
    _registry_flags(p)
    p.add_argument("--manifest", help="the manifest of the run (default: the result's)")
    _parent_flag(p)
    _format_flag(p)


def _add_runs(ops: Any) -> None:
    p = ops.add_parser("runs", help="list registry entries (by run id, process, status, date)")
    _registry_flags(p)
    p.add_argument("--run-id", help="only this run id (every attempt)")
    p.add_argument("--process", help="only this process")
    p.add_argument("--status", choices=["committed", "failed", "blocked", "passed"])
    p.add_argument("--date", help="only runs that started on this UTC date (YYYY-MM-DD)")
    p.add_argument("--since", help="only runs that started at or after this ISO 8601 time")
    p.add_argument("--until", help="only runs that started before this ISO 8601 time")
    p.add_argument("--latest", action="store_true", help="only the latest attempt of each run")
    _format_flag(p)


def _lineage_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--openlineage-config", help=CONFIG_HELP)
    p.add_argument("--lineage-spool", default=DEFAULT_SPOOL_DIR, help=SPOOL_HELP)
    _format_flag(p)


def _add_lineage_export(ops: Any) -> None:
    p = ops.add_parser(
        "lineage-export",
        help="emit OpenLineage START and COMPLETE/FAIL events of a registered run",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-registry-entry", help="a registry entry file")
    which.add_argument("--run-id", help="the run id to look up in --registry")
    p.add_argument("--attempt", type=int, help="with --run-id: this attempt (default: latest)")
    _registry_flags(p)
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NS=NAME",
        help="an input dataset (NS: a namespace or a manifest connection; repeatable)",
    )
    p.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NS=NAME",
        help="an output dataset (as --input)",
    )
    p.add_argument("--manifest", help="the manifest (default: the entry's)")
    p.add_argument(
        "--job-namespace",
        help="OpenLineage job namespace (default: OPENLINEAGE_NAMESPACE, else dpone)",
    )
    _parent_flag(p)
    p.add_argument("--no-emit", action="store_true", help="only print the events; send nothing")
    _lineage_output_flags(p)


def add_ops_commands(sub: Any) -> None:
    """Add ``dpone ops ...`` to the top-level subparsers ``sub``."""
    ops_parser = sub.add_parser("ops", help="run registry and OpenLineage export")
    ops = ops_parser.add_subparsers(
        dest="ops_command", required=True, parser_class=type(ops_parser)
    )
    _add_run_registry(ops)
    _add_runs(ops)
    _add_lineage_export(ops)
    flush = ops.add_parser("lineage-flush", help="send the events waiting in the spool, in order")
    _lineage_output_flags(flush)


def add_orchestrate_run_flags(p: argparse.ArgumentParser) -> None:
    """``--registry``, ``--lineage`` and ``--lineage-spool`` of ``dpone orchestrate run``."""
    p.add_argument(
        flag("registry"),
        help="register the run in this registry when it ends: a directory, 'postgresql' or a "
        "postgresql:// URL (default: not registered)",
    )
    p.add_argument(
        flag("lineage"),
        choices=["auto", "off"],
        default="auto",
        help="emit OpenLineage events when the run ends: 'auto' (default) when an OpenLineage "
        "transport is configured (OPENLINEAGE_URL, openlineage.yml, ...), 'off' never",
    )
    p.add_argument(flag("lineage_spool"), default=DEFAULT_SPOOL_DIR, help=SPOOL_HELP)


# -- commands --------------------------------------------------------------------------------


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _error_line(message: str) -> None:
    from dpone_core.redact import redact
    from dpone_core.text import escape_control

    print(f"dpone: {escape_control(redact(message))}", file=sys.stderr)


def _open(args: argparse.Namespace) -> RunRegistry:
    from dpone_core.ops.registry_select import open_registry

    return open_registry(args.registry, schema=args.backend_schema)


def _registration_output(outcome: Any, fmt: str) -> str:
    from dpone_core.ops.render import registration_markdown

    reg = outcome.registration
    entry = None if reg is None else reg.entry
    data: dict[str, Any] = {
        "schema_version": 1,
        "registered": reg is not None,
        "created": bool(reg and reg.created),
        "location": None if reg is None else reg.location,
        "entry_path": reg.location if reg is not None and os.path.isfile(reg.location) else None,
        "reason": outcome.skipped,
        "entry": None if entry is None else entry.model_dump(mode="json"),
    }
    return (
        json.dumps(data, indent=2) + "\n" if fmt == "json" else registration_markdown(data, entry)
    )


def _cmd_run_registry(args: argparse.Namespace) -> int:
    from dpone_core.ops.registration import register_run_result

    registry = _open(args)
    try:
        outcome = register_run_result(
            registry,
            args.run_result,
            artifact_specs=args.artifact,
            parent_flag=args.parent_run,
            manifest_path=args.manifest,
        )
    finally:
        registry.close()
    if outcome.skipped:
        _error_line(outcome.skipped)
    _emit(_registration_output(outcome, args.format))
    return EXIT_OK


def _time(text: str | None, name: str) -> Any:
    if text is None:
        return None
    from datetime import UTC, datetime

    from dpone_core.ops.errors import OpsInputError

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise OpsInputError(name, text, "expected an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _cmd_runs(args: argparse.Namespace) -> int:
    from datetime import date

    from dpone_core.ops.entry import RegistryQuery
    from dpone_core.ops.errors import OpsInputError
    from dpone_core.ops.render import entries_markdown

    try:
        on_date = date.fromisoformat(args.date) if args.date else None
    except ValueError:
        raise OpsInputError("--date", args.date, "expected YYYY-MM-DD") from None
    query = RegistryQuery(
        run_id=args.run_id,
        process=args.process,
        status=args.status,
        on_date=on_date,
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
        latest=args.latest,
    )
    registry = _open(args)
    try:
        listing = registry.list_entries(query)
        where = registry.describe()
    finally:
        registry.close()
    for problem in listing.problems:
        _error_line(f"unreadable registry entry: {problem}")
    if args.format == "json":
        rows = [entry.model_dump(mode="json") for entry in listing.entries]
        _emit(json.dumps(rows, indent=2) + "\n")
    else:
        _emit(entries_markdown(listing.entries, where, listing.problems))
    return EXIT_OK


def _entry_for_export(args: argparse.Namespace) -> tuple[RegistryEntry, str]:
    from dpone_core.ops.errors import CorruptRegistryEntry, OpsInputError
    from dpone_core.ops.registry import parse_entry

    if args.run_registry_entry is not None:
        path = args.run_registry_entry
        try:
            with open(path, "rb") as handle:
                data = handle.read(16 * 1024 * 1024)
        except OSError as exc:
            raise OpsInputError(
                "--run-registry-entry", path, f"cannot read it: {exc.strerror}"
            ) from None
        try:
            return parse_entry(data, path), os.path.abspath(path)
        except CorruptRegistryEntry as exc:
            raise OpsInputError(
                "--run-registry-entry", path, f"expected a registry entry: {exc.reason}"
            ) from None
    registry = _open(args)
    try:
        entry = registry.get(args.run_id, args.attempt)
        if entry is None:
            raise OpsInputError("--run-id", args.run_id, f"no entry in {registry.describe()}")
        return entry, registry.location(entry.run_id, entry.attempt)
    finally:
        registry.close()


def _cmd_lineage_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpone_core.ops.lineage_emit import lineage_configured
    from dpone_core.ops.lineage_export import ExportRequest, export_lineage
    from dpone_core.ops.registration import parent_from
    from dpone_core.ops.render import export_markdown

    entry, location = _entry_for_export(args)
    request = ExportRequest(
        entry=entry,
        entry_location=location,
        inputs=tuple(args.input),
        outputs=tuple(args.output),
        manifest_path=args.manifest,
        job_namespace=args.job_namespace,
        parent=parent_from(args.parent_run, {}) if args.parent_run else None,
    )
    emit = not args.no_emit and lineage_configured(
        os.environ, cwd=Path.cwd(), home=Path.home(), config_path=args.openlineage_config
    )
    export = export_lineage(
        request, spool_dir=args.lineage_spool, config_path=args.openlineage_config, emit=emit
    )
    _report_delivery(export.delivery)
    data = export.to_dict()
    _emit(json.dumps(data, indent=2) + "\n" if args.format == "json" else export_markdown(data))
    return EXIT_OK


def _report_delivery(delivery: Any) -> None:
    if delivery is not None and delivery.error is not None:
        _error_line(
            f"lineage not delivered ({delivery.error}); {delivery.waiting} event(s) kept in "
            f"{delivery.spool_dir}, sent by the next delivery or `dpone ops lineage-flush`"
        )


def _cmd_lineage_flush(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpone_core.ops.errors import OpsInputError
    from dpone_core.ops.lineage_emit import flush, lineage_configured, open_client
    from dpone_core.ops.lineage_spool import LineageSpool
    from dpone_core.ops.render import delivery_markdown

    if not lineage_configured(
        os.environ, cwd=Path.cwd(), home=Path.home(), config_path=args.openlineage_config
    ):
        raise OpsInputError(
            "OpenLineage configuration",
            "transport",
            "none is configured (set OPENLINEAGE_URL, an openlineage.yml or "
            "--openlineage-config); the spool is left as it is",
        )

    delivery = flush(
        spool=LineageSpool(args.lineage_spool), client=open_client(args.openlineage_config)
    )
    _report_delivery(delivery)
    data = delivery.to_dict()
    text = "\n".join(["# OpenLineage spool", "", *delivery_markdown(data)]) + "\n"
    _emit(json.dumps(data, indent=2) + "\n" if args.format == "json" else text)
    return EXIT_OK if delivery.error is None else EXIT_FAILED


def run_ops_command(args: argparse.Namespace) -> int:
    """Run ``dpone ops <command>``; conflicts and corrupt entries exit 1 with one line."""
    from dpone_core.ops.errors import CorruptRegistryEntry, RegistryConflict
    from dpone_core.redact import register_environment_secrets

    register_environment_secrets(os.environ)
    handlers = {
        "run-registry": _cmd_run_registry,
        "runs": _cmd_runs,
        "lineage-export": _cmd_lineage_export,
        "lineage-flush": _cmd_lineage_flush,
    }
    try:
        return handlers[args.ops_command](args)
    except (RegistryConflict, CorruptRegistryEntry) as exc:
        _error_line(f"error: {exc}")
        return EXIT_FAILED


def after_orchestrated_run(args: argparse.Namespace, report: Any) -> None:
    """Register the run (``--registry``) and export its lineage (``--lineage``), never failing it.

    Problems are one line each on stderr; the exit code stays the run's.
    """
    if args.registry is None and args.lineage == "off":
        return
    from dpone_core.ops.after_run import register_and_export

    for line in register_and_export(
        report,
        registry=args.registry,
        schema=args.backend_schema,
        lineage=args.lineage,
        spool_dir=args.lineage_spool,
    ):
        _error_line(line)
