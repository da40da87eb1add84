"""Run result files read into RunOutcome: both formats, the attempt's real times, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.outcome import outcome_from_document, read_outcome
from tests.ops.documents import report_doc, run_result_doc


def test_orchestrated_report_gives_the_attempts_times_from_its_transitions() -> None:
    outcome = outcome_from_document(report_doc(attempt=2), "r.json")
    assert outcome.source_kind == "orchestrated_run"
    assert (outcome.run_id, outcome.attempt, outcome.process) == (
        "shop.orders_2026_11_30",
        2,
        "orders",
    )
    assert outcome.status == "committed" and outcome.passed and outcome.executed
    # attempt 2's own transitions, not attempt 1's nor the invocation's
    assert outcome.started_at == "2026-11-30T02:00:00.000000Z"
    assert outcome.finished_at == "2026-11-30T02:05:00.000000Z"
    assert outcome.rows.written == 10 and outcome.rows.extracted == 10
    assert outcome.process_kind == "transfer" and outcome.load_id == "ld-1"
    assert outcome.lock_key == "shop.orders"
    assert outcome.evidence["output_dir"] == "out"


def test_plain_run_result_is_attempt_one_with_its_tries_times() -> None:
    outcome = outcome_from_document(run_result_doc(passed=False, errors=["x failed"]), "r.json")
    assert outcome.source_kind == "run_result" and outcome.attempt == 1
    assert outcome.status == "failed" and not outcome.passed
    assert outcome.started_at == "2026-11-30T02:00:01.000000Z"
    assert outcome.finished_at == "2026-11-30T02:00:03.500000Z"
    assert outcome.errors == ["x failed"]
    assert outcome.tries == 1


def test_a_refused_invocation_ran_nothing() -> None:
    outcome = outcome_from_document(report_doc(status="blocked", ran=False), "r.json")
    assert not outcome.executed
    assert outcome.blockers == ["job_state.already_committed"]


def test_a_command_result_is_a_command() -> None:
    doc = run_result_doc()
    doc["result"].update(
        exit_code=0,
        load_id=None,
        extracted_rows=None,
        inserted_rows=None,
        updated_rows=None,
        final_rows=None,
    )
    outcome = outcome_from_document(doc, "r.json")
    assert outcome.process_kind == "command" and outcome.exit_code == 0
    assert outcome.rows.written is None


@pytest.mark.parametrize(
    ("document", "field", "expected"),
    [
        ([], "", "expected a JSON object"),
        ({"hello": 1}, "", "expected an orchestrated run report"),
        ({**report_doc(), "passed": "yes"}, "passed", "orchestrated run report"),
        ({**report_doc(), "status": "done"}, "status", "orchestrated run report"),
        ({**run_result_doc(), "run_id": ""}, "run_id", "dpone run result"),
        ({**run_result_doc(), "attempts": {}}, "attempts", "dpone run result"),
    ],
)
def test_bad_documents_name_the_file_and_field(document: object, field: str, expected: str) -> None:
    with pytest.raises(OpsInputError) as exc:
        outcome_from_document(document, "results/r.json")
    assert exc.value.source == "results/r.json"
    assert exc.value.field == field
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_read_outcome_refuses_missing_empty_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(OpsInputError, match="cannot read"):
        read_outcome(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(OpsInputError, match="empty"):
        read_outcome(tmp_path / "empty.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(OpsInputError, match="expected JSON"):
        read_outcome(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text(json.dumps(report_doc()))
    outcome, data = read_outcome(tmp_path / "ok.json")
    assert outcome.run_id == "shop.orders_2026_11_30" and data.startswith(b"{")
