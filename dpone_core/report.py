"""The orchestrated-run report: one model, rendered as JSON and as a Markdown runbook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dpone_core.blockers import BlockerDetail
from dpone_core.clock import parse_utc

if TYPE_CHECKING:
    from dpone_core.job_state import JobState

SCHEMA_VERSION = 1


class OrchestratedRunReport(BaseModel):
    """What ``dpone orchestrate run`` prints and keeps as evidence (docs/orchestration.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    passed: bool
    status: Literal["committed", "failed", "blocked"]
    run_id: str
    process: str
    selector: str | None
    manifest_path: str
    lock_key: str
    lock_acquired: bool
    stale_lock_replaced: bool
    replaced_holder: dict[str, Any] | None = None
    resume_policy: str
    decision: str
    blockers: list[str] = Field(default_factory=list)
    blocker_details: list[BlockerDetail] = Field(default_factory=list)
    run_result: dict[str, Any] | None = None
    scheduler_handoff: dict[str, str]
    job_state: dict[str, Any] | None = None
    job_state_path: str
    output_dir: str
    evidence: dict[str, str] = Field(default_factory=dict)
    #: Set when the evidence files could not be written (the run's outcome stands).
    evidence_error: str | None = None
    started_at: str
    finished_at: str
    duration_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def of_committed_state(
        cls, state: JobState, *, location: str, resume_policy: str, decision: str
    ) -> OrchestratedRunReport:
        """The report of a committed run rebuilt from its job state alone.

        For a reader whose evidence files are gone or elsewhere (moved by an operator,
        written on another host): times from the state's last attempt, no handoff.
        """
        started = next(
            (t.at for t in reversed(state.transitions) if t.status.value == "started"),
            state.started_at,
        )
        duration = (parse_utc(state.updated_at) - parse_utc(started)).total_seconds()
        return cls(
            passed=True,
            status="committed",
            run_id=state.run_id,
            process=state.process,
            selector=state.selector,
            manifest_path=state.manifest_path,
            lock_key=state.lock_key,
            lock_acquired=True,
            stale_lock_replaced=False,
            resume_policy=resume_policy,
            decision=decision,
            run_result=state.run_result,
            scheduler_handoff={},
            job_state=state.to_dict(),
            job_state_path=location,
            output_dir=state.output_dir,
            started_at=started,
            finished_at=state.updated_at,
            duration_seconds=round(max(0.0, duration), 6),
        )

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def to_markdown(self) -> str:
        return render_markdown(self)


def _fence(text: str, lang: str = "") -> list[str]:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return [f"{ticks}{lang}", text.rstrip("\n"), ticks]


def render_markdown(report: OrchestratedRunReport) -> str:
    """A runbook: what happened, what to do about each blocker, what each try said."""
    icon = {"committed": "PASSED", "failed": "FAILED", "blocked": "BLOCKED"}[report.status]
    lines = [
        f"# dpone orchestrated run `{report.run_id}`: {icon}",
        "",
        f"- status: **{report.status}**",
        f"- process: `{report.process}` from `{report.manifest_path}`",
        f"- lock key: `{report.lock_key}` (acquired: {str(report.lock_acquired).lower()}, "
        f"stale lock replaced: {str(report.stale_lock_replaced).lower()})",
        f"- resume policy: `{report.resume_policy}`; decision: {report.decision}",
        f"- started {report.started_at}, finished {report.finished_at} "
        f"({report.duration_seconds:.3f} s)",
    ]
    if report.job_state is not None:
        js = report.job_state
        lines.append(
            f"- job state: `{js.get('status')}`, attempt {js.get('attempt')}, "
            f"file `{report.job_state_path}`"
        )
    lines += ["", "## Blockers", ""]
    if not report.blocker_details:
        lines.append("None.")
    for blocker in report.blocker_details:
        lines += [
            f"### `{blocker.code}`",
            "",
            blocker.message,
            "",
            f"**Action:** {blocker.action}",
            "",
        ]
    rr = report.run_result
    if rr is not None:
        result = rr.get("result") or {}
        lines += ["", "## Run result", ""]
        lines.append("| passed | extracted | inserted | updated | final rows | duration (s) |")
        lines.append("|---|---|---|---|---|---|")
        lines.append(
            f"| {rr.get('passed')} | {result.get('extracted_rows')} | "
            f"{result.get('inserted_rows')} | {result.get('updated_rows')} | "
            f"{result.get('final_rows')} | {result.get('duration_seconds')} |"
        )
        if result.get("load_id"):
            lines.append("")
            lines.append(
                f"Load id `{result['load_id']}`; watermark {result.get('watermark_before')!r} -> "
                f"{result.get('watermark_after')!r}."
            )
        lines += ["", "### Attempts", ""]
        for attempt in rr.get("attempts") or []:
            error = attempt.get("error") or ""
            lines.append(
                f"- try {attempt.get('attempt')}: {attempt.get('status')} "
                f"({attempt.get('duration_seconds'):.3f} s)" + (f": {error}" if error else "")
            )
        for name in ("stdout_tail", "stderr_tail"):
            if result.get(name):
                lines += ["", f"{name.replace('_', ' ')}:", "", *_fence(result[name], "text")]
    lines += [
        "",
        "## Schedule it (crontab line)",
        "",
        *_fence(report.scheduler_handoff.get("crontab_line", ""), "sh"),
        "",
        "Each run takes its logical date from the scheduler, so every day is its own run id. "
        "Airflow (task and DAG file), Dagster and Kubernetes snippets are in "
        "`scheduler_handoff` of the JSON report (docs/handoff.md).",
        "",
        "## Evidence",
        "",
    ]
    lines += [f"- {name}: `{path}`" for name, path in report.evidence.items()]
    lines.append(f"- job state: `{report.job_state_path}`")
    return "\n".join(lines) + "\n"
