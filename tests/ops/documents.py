"""Run result documents in the shapes dpone writes them (for the pure tests)."""

from __future__ import annotations

from typing import Any


def run_result_doc(
    *, run_id: str = "shop.orders_2026_11_30", passed: bool = True, errors: list[str] | None = None
) -> dict[str, Any]:
    return {
        "passed": passed,
        "run_id": run_id,
        "process": "orders",
        "attempts": [
            {
                "attempt": 1,
                "status": "passed" if passed else "failed",
                "started_at": "2026-11-30T02:00:01.000000Z",
                "duration_seconds": 2.5,
                "error": None if passed else (errors or ["boom"])[0],
            }
        ],
        "result": {
            "status": "passed" if passed else "failed",
            "extracted_rows": 10,
            "inserted_rows": 7,
            "updated_rows": 3,
            "final_rows": 10,
            "duration_seconds": 2.0,
            "errors": errors or [],
            "load_id": "ld-1",
            "exit_code": None,
        },
    }


def report_doc(
    *,
    run_id: str = "shop.orders_2026_11_30",
    status: str = "committed",
    attempt: int = 1,
    ran: bool = True,
    errors: list[str] | None = None,
) -> dict[str, Any]:
    passed = status == "committed"
    transitions = []
    for n in range(1, attempt + 1):
        end = status if n == attempt else "failed"
        transitions += [
            {"status": "started", "at": f"2026-11-30T0{n}:00:00.000000Z", "attempt": n},
            {"status": "running", "at": f"2026-11-30T0{n}:00:00.100000Z", "attempt": n},
            {"status": end, "at": f"2026-11-30T0{n}:05:00.000000Z", "attempt": n},
        ]
    return {
        "schema_version": 1,
        "passed": passed,
        "status": status,
        "run_id": run_id,
        "process": "orders",
        "selector": "orders",
        "manifest_path": "shop.yml",
        "lock_key": "shop.orders",
        "blockers": [] if ran else ["job_state.already_committed"],
        "run_result": run_result_doc(run_id=run_id, passed=passed, errors=errors) if ran else None,
        "job_state": {"attempt": attempt, "transitions": transitions, "status": status},
        "started_at": "2026-11-30T00:59:59.000000Z",
        "finished_at": "2026-11-30T09:00:00.000000Z",
        "duration_seconds": 1.0,
        "evidence": {"report_json": "out/orchestrated_run.json"},
        "output_dir": "out",
    }
