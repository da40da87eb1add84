"""Dagster Pipes and live output for the command processes of a step.

Materializing a command asset runs the command through the engine like any
process (:mod:`dpone_dagster.invocation`). :class:`CommandPipes` watches its tries
(:mod:`dpone_core.executor.command_observer`) and adds two things:

* **A Pipes session per try**, made of Dagster's own parts
  (``PipesTempFileContextInjector``, ``PipesTempFileMessageReader``,
  ``PipesMessageHandler``, ``PipesSession``). The try's command gets the session's
  ``DAGSTER_PIPES_CONTEXT`` / ``DAGSTER_PIPES_MESSAGES``, so
  ``dagster_pipes.open_dagster_pipes()`` works in it; the context names only the
  command's own asset, so ``report_asset_materialization(metadata=...)`` and
  ``report_asset_check(...)`` need no asset key. Every reported string is
  redacted before Dagster sees it. Pipes log messages reach the run's log live.
* **Live output**: the command's output lines (redacted) are written to the step's
  stdout and stderr as they arrive, which Dagster captures as the compute logs.

Only the committed try's reports count (:class:`CommandReports`): a try that
failed is retried with a fresh session, and what it reported is logged as
discarded. The committed try's metadata is merged into the materialization next
to the ``dpone/*`` keys (dpone's own keys win; the ``dpone/`` prefix is
reserved), and its checks are yielded when the asset declares them and the run
selected them. See docs/dagster-pipes.md.

Unlike ``dagster.open_pipes_session``, a session that received no message at all
is not warned about: most commands do not use Pipes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import dagster as dg

from dpone_core.executor.command_observer import Stream, observing_commands
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.results import ProcessResult
from dpone_core.redact import redact
from dpone_dagster.checks import CHECK_NAME
from dpone_dagster.process_ref import ProcessRef

if TYPE_CHECKING:
    from dagster_pipes import PipesContextData, PipesDataProvenance, PipesMessage

__all__ = ["NO_COMMAND_REPORTS", "RESERVED_PREFIX", "CommandPipes", "CommandReports"]

#: Metadata keys under this prefix are dpone's; a command cannot set them.
RESERVED_PREFIX = "dpone/"

_StepResult = dg.MaterializeResult[Any] | dg.AssetCheckResult

#: The parameters of each Pipes message that carry free text from the command.
_TEXT_PARAMS = {
    "report_asset_materialization": ("metadata",),
    "report_asset_check": ("metadata",),
    "log": ("message",),
    "log_external_stream": ("text",),
    "report_custom_message": ("payload",),
    "closed": ("exception",),
}
_METADATA_ENTRY = frozenset({"raw_value", "type"})


def _redacted(value: Any) -> Any:
    """``value`` with every string in it redacted (keys too, but not a metadata entry's)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        if set(value) == _METADATA_ENTRY:  # {"raw_value": ..., "type": ...}
            return {"raw_value": _redacted(value["raw_value"]), "type": value["type"]}
        return {
            (redact(key) if isinstance(key, str) else key): _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


class _RedactingMessageHandler(dg.PipesMessageHandler):
    """Dagster's message handler, given every message's free text redacted first."""

    def handle_message(self, message: PipesMessage) -> None:
        params = message.get("params")
        names = _TEXT_PARAMS.get(str(message.get("method")), ())
        if isinstance(params, Mapping) and names:
            params = {
                name: (_redacted(value) if name in names else value)
                for name, value in params.items()
            }
            message = {**message, "params": params}
        super().handle_message(message)


def _provenance(context: dg.AssetExecutionContext, key: dg.AssetKey) -> PipesDataProvenance | None:
    provenance = context.get_asset_provenance(key)
    if provenance is None:
        return None
    return {
        "code_version": provenance.code_version,
        "input_data_versions": {
            k.to_escaped_user_string(): v.value for k, v in provenance.input_data_versions.items()
        },
        "is_user_provided": provenance.is_user_provided,
    }


def _context_data(
    context: dg.AssetExecutionContext, key: dg.AssetKey, extras: Mapping[str, Any]
) -> PipesContextData:
    """What ``dagster.open_pipes_session`` injects, for the command's one asset only.

    Dagster's own context data names every selected asset of the step (and looks up
    each one's provenance); a command reports for its own asset, so it sees that one.
    """
    name = key.to_escaped_user_string()
    partitioned = context.has_partition_key
    time_window = partitioned and isinstance(
        context.assets_def.partitions_def, dg.TimeWindowPartitionsDefinition
    )
    key_range = context.partition_key_range if partitioned else None
    window = context.partition_time_window if time_window else None
    return {
        "asset_keys": [name],
        "code_version_by_asset_key": {name: context.assets_def.code_versions_by_key.get(key)},
        "provenance_by_asset_key": {name: _provenance(context, key)},
        "partition_key": context.partition_key if partitioned else None,
        "partition_key_range": (
            {"start": key_range.start, "end": key_range.end} if key_range is not None else None
        ),
        "partition_time_window": (
            {"start": window.start.isoformat(), "end": window.end.isoformat()}
            if window is not None
            else None
        ),
        "run_id": context.run.run_id,
        "job_name": context.job_name,
        "retry_number": context.retry_number,
        "extras": dict(extras),
    }


@contextmanager
def _pipes_session(
    context: dg.AssetExecutionContext, key: dg.AssetKey, extras: Mapping[str, Any]
) -> Iterator[dg.PipesSession]:
    """A Pipes session over temporary files; closing it handles every message written."""
    data = _context_data(context, key, extras)
    handler = _RedactingMessageHandler(context, dg.PipesTempFileMessageReader())
    with (
        dg.PipesTempFileContextInjector().inject_context(data) as injector_params,
        handler.handle_messages() as reader_params,
    ):
        yield dg.PipesSession(
            context_data=data,
            message_handler=handler,
            context_injector_params=injector_params,
            message_reader_params=reader_params,
            context=context,
        )
    if handler.received_opened_message and not handler.received_closed_message:
        context.log.warning(
            "[pipes] did not receive closed message from external process. Buffered messages "
            "may have been discarded without being delivered. Use `open_dagster_pipes` as a "
            "context manager (a with block) to ensure that cleanup is successfully completed."
        )


_OUTPUT_LOCK = threading.Lock()


def _write_step_output(stream: Stream, text: str) -> None:
    """Write to the step's stdout or stderr: Dagster captures them as the compute logs.

    Resolved at each write, as Dagster's own capture redirects the file descriptors
    behind ``sys.stdout`` and ``sys.stderr``.
    """
    with _OUTPUT_LOCK:
        target = sys.stdout if stream == "stdout" else sys.stderr
        target.write(text)
        target.flush()


@dataclass
class _Try:
    """One try as :class:`CommandPipes` watches it (a ``CommandTry``)."""

    env: Mapping[str, str]
    passed: bool = False

    def output(self, stream: Stream, text: str) -> None:
        _write_step_output(stream, text)

    def ended(self, result: ProcessResult) -> None:
        self.passed = result.status == "passed"


@dataclass(frozen=True)
class CommandReports:
    """What the committed try's command reported over Dagster Pipes."""

    materializations: tuple[dg.MaterializeResult[Any], ...] = ()
    checks: tuple[dg.AssetCheckResult, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.materializations or self.checks)

    def results(
        self,
        context: dg.AssetExecutionContext,
        asset_key: dg.AssetKey,
        metadata: Mapping[str, Any],
    ) -> Iterator[_StepResult]:
        """The committed asset's ``MaterializeResult`` with ``metadata`` and the command's
        own, then the command's checks that the asset declares and the run selected."""
        merged, data_version = self._merged(context.log, asset_key, metadata)
        yield dg.MaterializeResult(asset_key=asset_key, metadata=merged, data_version=data_version)
        yield from self._checks(context, asset_key)

    def _merged(
        self, log: dg.DagsterLogManager, asset_key: dg.AssetKey, metadata: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dg.DataVersion | None]:
        reported: dict[str, Any] = {}
        data_version = None
        for materialization in self.materializations:  # in order: a later value wins
            reported.update(materialization.metadata or {})
            data_version = materialization.data_version or data_version
        clashing = sorted(k for k in reported if k in metadata or k.startswith(RESERVED_PREFIX))
        if clashing:
            log.warning(
                redact(
                    f"dpone: {asset_key.to_user_string()}: the command reported metadata that "
                    f"dpone sets itself; dpone's values are kept: {', '.join(clashing)}"
                )
            )
        own = {key: value for key, value in reported.items() if key not in clashing}
        return {**metadata, **own}, data_version

    def _checks(
        self, context: dg.AssetExecutionContext, asset_key: dg.AssetKey
    ) -> Iterator[dg.AssetCheckResult]:
        latest: dict[str, dg.AssetCheckResult] = {}
        for check in self.checks:  # a later result of the same check wins
            if check.check_name is not None:  # always set by Pipes
                latest[check.check_name] = check
        declared = context.assets_def.check_keys
        for name, check in latest.items():
            key = dg.AssetCheckKey(asset_key, name)
            if name == CHECK_NAME:
                context.log.warning(
                    f"dpone: {asset_key.to_user_string()}: the command reported the check "
                    f"{name!r}, which dpone evaluates itself; the command's result is ignored"
                )
            elif key in context.selected_asset_check_keys:
                yield check
            elif key in declared:
                context.log.info(
                    f"dpone: {asset_key.to_user_string()}: the command reported the check "
                    f"{name!r}, which this run did not select; not recorded"
                )
            else:
                context.log.warning(
                    f"dpone: {asset_key.to_user_string()}: the command reported the check "
                    f"{name!r}, which the asset does not declare; not recorded. Declare it "
                    "with an AssetCheckSpec on the asset (docs/dagster-pipes.md)"
                )


NO_COMMAND_REPORTS = CommandReports()


def _split(
    reported: Sequence[dg.PipesExecutionResult],
) -> CommandReports:
    return CommandReports(
        materializations=tuple(r for r in reported if isinstance(r, dg.MaterializeResult)),
        checks=tuple(r for r in reported if isinstance(r, dg.AssetCheckResult)),
    )


def _describe(reports: CommandReports) -> str:
    keys = sorted({key for m in reports.materializations for key in (m.metadata or {})})
    checks = [f"{c.check_name} ({'passed' if c.passed else 'failed'})" for c in reports.checks]
    parts = [f"metadata {', '.join(keys)}"] if keys else []
    parts += [f"checks {', '.join(checks)}"] if checks else []
    return "; ".join(parts) or "a materialization without metadata"


class CommandPipes:
    """For the dynamic extent of one process's run: Pipes and live output for its command tries.

    Use it around the run, then read :meth:`reports`::

        with CommandPipes(context, ref) as pipes:
            report = service.run(request=request, output_dir=out_dir)
        reports = pipes.reports()   # the committed try's, else NO_COMMAND_REPORTS

    A transfer has no command tries: nothing is watched and nothing reported.
    """

    def __init__(self, context: dg.AssetExecutionContext, ref: ProcessRef) -> None:
        self._context = context
        self._ref = ref
        self._reports = NO_COMMAND_REPORTS
        self._scope: AbstractContextManager[None] | None = None

    def __enter__(self) -> CommandPipes:
        self._scope = observing_commands(self._watch)
        self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.__exit__(exc_type, exc, traceback)

    def reports(self) -> CommandReports:
        """What the last try reported, if it passed; else :data:`NO_COMMAND_REPORTS`."""
        return self._reports

    @contextmanager
    def _watch(self, ctx: ProcessContext) -> Iterator[_Try]:
        """One try: its own Pipes session; its reports are kept only if it passes."""
        self._reports = NO_COMMAND_REPORTS
        extras = {
            "dpone_run_id": ctx.run_id,
            "dpone_process": ctx.process_name,
            "dpone_try": ctx.try_number,
            "dpone_attempt": ctx.job_attempt,
        }
        with _pipes_session(self._context, self._ref.asset_key, extras) as session:
            watch = _Try(env=dict(session.get_bootstrap_env_vars()))
            yield watch
        reports = _split(session.get_reported_results())
        if watch.passed:
            self._reports = reports
        elif reports:
            self._context.log.info(
                redact(
                    f"dpone: {self._ref.label}: try {ctx.try_number} failed; what its command "
                    f"reported over Dagster Pipes is discarded ({_describe(reports)}): only "
                    "the committed try's reports count"
                )
            )
