"""``dpone``: a thin argparse adapter over dpone_core.

Only argparse is imported at start-up so that ``--help`` stays fast; each
command imports what it needs when it runs. No business rules live here.
Exit codes: 0 committed/passed, 1 failed or blocked, 2 invalid invocation or
manifest (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from dpone_core import defaults
from dpone_core.cli_flags import flag
from dpone_core.cli_ops import (
    add_ops_commands,
    add_orchestrate_run_flags,
    after_orchestrated_run,
    run_ops_command,
)

if TYPE_CHECKING:
    from dpone_core.backends.selection import SelectedBackend

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

RUN_ID_HELP = (
    "logical run id (default: <manifest file name>.<selector>_<logical date>, the logical date "
    "being --execution-date or today's UTC date as YYYY_MM_DD, e.g. shop.orders_2026_06_05, so "
    "that every scheduler names one logical run the same way)"
)
EXECUTION_DATE_HELP = (
    "the logical date of this run, YYYY-MM-DD or an ISO 8601 time (UTC unless it says "
    "otherwise); derives the run id (docs/orchestration.md, 'Run ids'); not with --run-id"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr, exit 2 (argparse would also print the whole usage)."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_empty(what: str) -> Any:
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return text

    parse.__name__ = what
    return parse


def _execution_date(text: str) -> str:
    from dpone_core.logical_run import parse_execution_date

    try:
        parse_execution_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _schedule(text: str) -> str:
    from dpone_core.schedule import check_schedule

    try:
        return check_schedule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_handoff_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        flag("schedule"),
        type=_schedule,
        help="cron schedule (UTC) of the scheduler handoff snippets (default: the process's "
        "'schedule:' in the manifest, else '0 2 * * *')",
    )
    p.add_argument(
        flag("dag_id"),
        type=_non_empty("DAG id"),
        help="the Airflow DAG running this (recorded; names the DAG of the Airflow handoff)",
    )
    p.add_argument(
        flag("scheduler"),
        type=_non_empty("scheduler"),
        help="who runs this: cron, airflow, dagster, kubernetes, ... (recorded in the job "
        "state and named in later refusals; default: airflow with --dag-id, else cli)",
    )
    p.add_argument(
        flag("scheduler_run_id"),
        type=_non_empty("scheduler run id"),
        help="the scheduler's own id of this run (an Airflow run id, a Kubernetes Job name)",
    )


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        flag("manifest_path"), dest="manifest", required=True, help="path of the YAML manifest"
    )
    p.add_argument(
        flag("selector"),
        type=_non_empty("selector"),
        help="process name in the manifest (optional when it has one process)",
    )
    naming = p.add_mutually_exclusive_group()
    naming.add_argument(flag("run_id"), type=_non_empty("run id"), help=RUN_ID_HELP)
    naming.add_argument(flag("execution_date"), type=_execution_date, help=EXECUTION_DATE_HELP)
    p.add_argument(
        flag("retry_attempts"),
        type=_non_negative_int,
        default=0,
        help="extra tries after a failed one (default: 0)",
    )
    p.add_argument(
        flag("retry_backoff_seconds"),
        type=_non_negative_float,
        default=0.0,
        help="pause between tries (default: 0)",
    )


BACKEND_HELP = (
    "where locks and job states live: 'files' (--lock-dir/--state-dir), 'postgresql' (DSN from "
    "DPONE_ORCHESTRATION_DSN) or a postgresql:// URL (default: PostgreSQL when "
    "DPONE_ORCHESTRATION_DSN is set, else files)"
)
BACKEND_SCHEMA_HELP = (
    "PostgreSQL schema of dpone's tables (default: DPONE_ORCHESTRATION_SCHEMA, else dpone)"
)


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(flag("backend"), help=BACKEND_HELP)
    p.add_argument(
        flag("backend_schema"), type=_non_empty("backend schema"), help=BACKEND_SCHEMA_HELP
    )


def _add_lock_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        flag("lock_dir"), default=defaults.LOCK_DIR, help=f"default: {defaults.LOCK_DIR}"
    )
    p.add_argument(
        flag("lock_ttl_seconds"),
        type=_positive_float,
        default=defaults.LOCK_TTL_SECONDS,
        help="age after which a lock record whose holder cannot be checked "
        f"(another host) is retired (default: {defaults.LOCK_TTL_SECONDS:g})",
    )


def _add_state_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        flag("state_dir"), default=defaults.STATE_DIR, help=f"default: {defaults.STATE_DIR}"
    )


def _add_format_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        flag("format"), choices=["json", "md"], default=defaults.REPORT_FORMAT, help="report format"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpone", description="Run YAML-manifest data pipelines safely.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="execute one manifest process (no lock, no job state)")
    _add_run_flags(run)
    _add_format_flag(run)

    orch = sub.add_parser("orchestrate", help="run with locks, job state and evidence")
    osub = orch.add_subparsers(dest="orchestrate_command", required=True, parser_class=_Parser)

    orun = osub.add_parser(
        "run",
        help="run one process under a concurrency lock, a job state and a resume policy",
        description="Run one manifest process with a per-key lock, a durable job state, a "
        "resume policy, retries, scheduler handoff snippets and immutable evidence. Exit 0 "
        "when the run committed, 1 when it failed or was blocked, 2 on invalid input.",
    )
    _add_run_flags(orun)
    orun.add_argument(
        flag("concurrency_key"),
        type=_non_empty("concurrency key"),
        help="lock key (default: the manifest's concurrency_key, else the run id)",
    )
    _add_lock_flags(orun)
    _add_state_flags(orun)
    orun.add_argument(
        flag("resume_policy"),
        choices=["fail", "resume", "restart"],
        default=defaults.RESUME_POLICY,
        help=f"what to do when the run id has a previous state (default: {defaults.RESUME_POLICY})",
    )
    orun.add_argument(
        flag("allow_duplicate_load"),
        action="store_true",
        help="let --resume-policy restart append rows the previous attempt already published "
        "(refused otherwise: job_state.restart_would_duplicate)",
    )
    output = orun.add_mutually_exclusive_group()
    output.add_argument(
        flag("output_dir"),
        help="evidence directory (default: <output root>/<run-id>)",
    )
    output.add_argument(
        flag("output_root"),
        help=f"evidence goes to <output root>/<run-id> (default: {defaults.OUTPUT_ROOT})",
    )
    _add_handoff_flags(orun)
    _add_format_flag(orun)
    _add_backend_flags(orun)
    add_orchestrate_run_flags(orun)

    status = osub.add_parser("status", help="show the job state of a run id")
    status.add_argument(flag("run_id"), required=True, type=_non_empty("run id"))
    _add_state_flags(status)
    _add_format_flag(status)
    _add_backend_flags(status)

    locks = osub.add_parser("locks", help="list lock records: key, holder, held or stale")
    _add_lock_flags(locks)
    locks.add_argument(
        "--prune",
        action="store_true",
        help="delete the lock files of keys that are provably free now (files backend)",
    )
    _add_format_flag(locks)
    _add_backend_flags(locks)
    add_ops_commands(sub)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from dpone_core.executor import RunManifestService
    from dpone_core.executor.request import RunRequest
    from dpone_core.render import run_result_markdown
    from dpone_core.signals import signals_as_exceptions

    request = RunRequest(
        manifest_path=args.manifest,
        selector=args.selector,
        run_id=args.run_id,
        execution_date=args.execution_date,
        retry_attempts=args.retry_attempts,
        retry_backoff_seconds=args.retry_backoff_seconds,
    )
    with signals_as_exceptions():
        result = RunManifestService().execute(request)
    data = result.to_dict()
    _emit(json.dumps(data, indent=2) + "\n" if args.format == "json" else run_result_markdown(data))
    return EXIT_OK if result.passed else EXIT_FAILED


def _backend(args: argparse.Namespace) -> SelectedBackend:
    """The lock manager and job-state store ``--backend`` selects (files by default)."""
    from dpone_core.backends.selection import select_backend

    return select_backend(
        args.backend,
        lock_dir=getattr(args, "lock_dir", defaults.LOCK_DIR),
        state_dir=getattr(args, "state_dir", defaults.STATE_DIR),
        lock_ttl_seconds=getattr(args, "lock_ttl_seconds", defaults.LOCK_TTL_SECONDS),
        schema=args.backend_schema,
    )


def _cmd_orchestrate_run(args: argparse.Namespace) -> int:
    from dpone_core.executor import RunManifestService
    from dpone_core.handoff import SchedulerHandoffBuilder
    from dpone_core.resume import ResumePolicy
    from dpone_core.run import (
        OrchestratedRunRequest,
        OrchestratedRunService,
        OrchestrationInterrupted,
    )
    from dpone_core.signals import TerminationSignal, signals_as_exceptions

    backend = _backend(args)
    try:
        service = OrchestratedRunService(
            lock_manager=backend.lock_manager,
            handoff_builder=SchedulerHandoffBuilder(),
            run_executor=RunManifestService().execute,
            job_state_store=backend.job_state_store,
        )
        request = OrchestratedRunRequest(
            manifest_path=args.manifest,
            selector=args.selector,
            run_id=args.run_id,
            execution_date=args.execution_date,
            retry_attempts=args.retry_attempts,
            retry_backoff_seconds=args.retry_backoff_seconds,
            concurrency_key=args.concurrency_key,
            schedule=args.schedule,
            dag_id=args.dag_id,
            scheduler=_scheduler_identity(args),
            resume_policy=ResumePolicy(args.resume_policy),
            allow_duplicate_load=args.allow_duplicate_load,
        )
        try:
            with signals_as_exceptions():
                report = service.run(
                    request=request, output_dir=args.output_dir, output_root=args.output_root
                )
        except OrchestrationInterrupted as interrupted:
            report = interrupted.report
            # The recorded reason (e.g. a lost lock) says more than the signal that carried it.
            transitions = (report.job_state or {}).get("transitions") or [{}]
            why = transitions[-1].get("reason") or interrupted.cause
            _error_line(f"{why}; run {report.run_id} marked failed")
        except TerminationSignal as exc:
            # Outside the run itself (admission, final bookkeeping, or a lost lock's
            # interrupt racing with them): no report, but one line instead of a traceback.
            print(
                f"dpone: {exc} while the attempt was being recorded; "
                "`dpone orchestrate status` shows what was",
                file=sys.stderr,
            )
            return EXIT_FAILED
    finally:
        backend.close()
    _emit(report.to_json() if args.format == "json" else report.to_markdown())
    from dpone_core.report_hooks import run_report_hooks

    run_report_hooks(report)  # e.g. back to Dagster when Dagster Pipes launched dpone
    if report.evidence_error is not None:
        # After the run: the exit code stays the run's; the message names the path.
        _error_line(report.evidence_error)
    after_orchestrated_run(args, report)  # --registry / --lineage; never changes the exit code
    return EXIT_OK if report.passed else EXIT_FAILED


def _scheduler_identity(args: argparse.Namespace) -> Any:
    from dpone_core.job_state import SchedulerIdentity

    kind = args.scheduler or ("airflow" if args.dag_id else "cli")
    return SchedulerIdentity(kind=kind, name=args.dag_id, run_id=args.scheduler_run_id)


def _cmd_status(args: argparse.Namespace) -> int:
    from dpone_core.errors import CorruptJobState
    from dpone_core.render import job_state_markdown

    backend = _backend(args)
    store = backend.job_state_store
    try:
        state = store.load(args.run_id)
    except CorruptJobState as exc:
        _error_line(f"job_state.corrupt: {exc}")
        return EXIT_FAILED
    finally:
        backend.close()
    if state is None:
        where = store.location(args.run_id)
        _error_line(f"no job state for run id {args.run_id!r} ({where})")
        return EXIT_FAILED
    data = state.to_dict()
    location = store.location(args.run_id)
    _emit(
        json.dumps(data, indent=2) + "\n"
        if args.format == "json"
        else job_state_markdown(data, location)
    )
    return EXIT_OK


def _cmd_locks(args: argparse.Namespace) -> int:
    """List lock records (exit 1 naming the dir when it cannot be listed), or --prune them."""
    from dpone_core.backends.file_locks import LocalRunLockManager
    from dpone_core.errors import BackendConfigError
    from dpone_core.render import locks_markdown, pruned_markdown

    backend = _backend(args)
    where = backend.describe()
    try:
        manager = backend.lock_manager
        if args.prune:
            if not isinstance(manager, LocalRunLockManager):
                raise BackendConfigError("--prune applies to the files backend only")
            pruned = manager.prune()
        else:
            rows = [status.to_dict() for status in manager.inspect()]
    finally:
        backend.close()
    if args.prune:
        text = pruned_markdown(pruned, str(args.lock_dir))
        _emit(json.dumps({"pruned": pruned}, indent=2) + "\n" if args.format == "json" else text)
    else:
        text = locks_markdown(rows, where)
        _emit(json.dumps(rows, indent=2) + "\n" if args.format == "json" else text)
    return EXIT_OK


def _error_line(message: str) -> None:
    """One line on stderr, whatever the message holds (run ids may carry newlines)."""
    from dpone_core.redact import redact
    from dpone_core.text import escape_control

    print(f"dpone: {escape_control(redact(message))}", file=sys.stderr)


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        ("run", None): _cmd_run,
        ("orchestrate", "run"): _cmd_orchestrate_run,
        ("orchestrate", "status"): _cmd_status,
        ("orchestrate", "locks"): _cmd_locks,
        ("ops", None): run_ops_command,
    }
    handler = handlers[(args.command, getattr(args, "orchestrate_command", None))]
    from dpone_core.errors import DponeUsageError, OrchestrationBackendError

    try:
        return handler(args)
    except DponeUsageError as exc:
        _error_line(f"error: {exc}")
        return EXIT_USAGE
    except OrchestrationBackendError as exc:  # unreachable, refused write: a retry may help
        _error_line(f"error: {exc}")
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED
    except OSError as exc:  # an unusable --lock-dir/--state-dir/--output-dir
        _error_line(f"error: {exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
