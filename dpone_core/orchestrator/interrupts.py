"""How an admitted attempt that did not end normally reaches the caller, with its report."""

from __future__ import annotations

from dpone_core.errors import DponeUsageError
from dpone_core.report import OrchestratedRunReport

__all__ = ["InvalidInputAfterAdmission", "OrchestrationInterrupted"]


class OrchestrationInterrupted(BaseException):
    """A signal or interrupt ended the attempt; the state and evidence are already written.

    A ``BaseException`` like the signal it carries, so that no ``except
    Exception`` between here and the caller can swallow a stop request.
    """

    def __init__(self, report: OrchestratedRunReport, cause: BaseException) -> None:
        super().__init__(f"orchestrated run {report.run_id} interrupted: {cause!r}")
        self.report = report
        self.cause = cause


class InvalidInputAfterAdmission(DponeUsageError):
    """Invalid input found only once the attempt ran (a column the source lacks).

    Still a usage error (exit 2), but the attempt was admitted, so it carries
    the report of the ``failed`` attempt the engine recorded and wrote.
    """

    def __init__(self, cause: DponeUsageError, report: OrchestratedRunReport) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.report = report
