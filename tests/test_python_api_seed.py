"""The seed's Python API example (DESIGN.md §3), imports renamed, runs with its own executor.

The example passes its own ``run_executor``; such a service needs no manifest
file on disk (the process is the selector, the lock key the given one), and
paths may be ``str`` or ``Path``. Run in a fresh interpreter in an empty
directory, so nothing of the test process leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The example as the seed writes it; only ``run_executor`` is the caller's own callable.
SEED_EXAMPLE = '''
from pathlib import Path

from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.locks import LocalRunLockManager
from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService
from dpone_core.state import LocalJobStateStore
from dpone_core.runtime import RunManifestService

calls = []


class Result:
    passed = True

    def __init__(self, request):
        self.run_id = request.run_id
        self.process = request.selector

    def to_dict(self):
        return {"passed": True, "run_id": self.run_id, "process": self.process,
                "attempts": [], "result": {"status": "passed", "errors": []}}


def my_executor(request):
    calls.append(request.run_id)
    return Result(request)


service = OrchestratedRunService(
    lock_manager=LocalRunLockManager(".dpone/locks"),
    handoff_builder=SchedulerHandoffBuilder(),
    run_executor=my_executor,   # any callable(request) -> run result
    job_state_store=LocalJobStateStore(".dpone/orchestration-state"),
)
report = service.run(
    output_dir=".dpone/orchestration/orders",
    request=OrchestratedRunRequest(
        manifest_path=MANIFEST_PATH, selector="orders",
        run_id="orders_2026_06_05", retry_attempts=2, retry_backoff_seconds=5,
        concurrency_key="orders_daily",
    ),
)
report.passed; report.status; report.blockers; report.job_state; report.to_dict()
print(json.dumps({"passed": report.passed, "status": report.status,
                  "blockers": report.blockers, "lock_key": report.lock_key,
                  "process": report.process, "calls": calls,
                  "state": report.job_state["status"]}))
'''


def _run_example(tmp_path: Path, manifest_path: str) -> dict[str, object]:
    code = "import json\n" + SEED_EXAMPLE.replace("MANIFEST_PATH", manifest_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DPONE_ORCHESTRATION_DSN", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_seed_example_runs_without_a_manifest_file(tmp_path: Path) -> None:
    assert not (tmp_path / "manifests").exists()
    result = _run_example(tmp_path, '"manifests/orders.yml"')
    assert result == {
        "passed": True,
        "status": "committed",
        "blockers": [],
        "lock_key": "orders_daily",
        "process": "orders",
        "calls": ["orders_2026_06_05"],
        "state": "committed",
    }
    assert (tmp_path / ".dpone/orchestration/orders/orchestrated_run.json").is_file()
    assert (tmp_path / ".dpone/orchestration-state/orders_2026_06_05.job_state.json").is_file()


def test_seed_example_takes_a_path_object(tmp_path: Path) -> None:
    result = _run_example(tmp_path, 'Path("manifests/orders.yml")')
    assert result["status"] == "committed"
    state = json.loads(
        (tmp_path / ".dpone/orchestration-state/orders_2026_06_05.job_state.json").read_text()
    )
    assert state["manifest_path"] == "manifests/orders.yml"


def test_the_default_executor_still_requires_its_manifest(tmp_path: Path) -> None:
    """Only a custom executor may run without a manifest: the default one reads it."""
    code = (
        "from dpone_core.errors import ManifestError\n"
        "from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService\n"
        "from dpone_core.runtime import RunManifestService\n"
        "from dpone_core.handoff import SchedulerHandoffBuilder\n"
        "from dpone_core.locks import LocalRunLockManager\n"
        "from dpone_core.state import LocalJobStateStore\n"
        "service = OrchestratedRunService(lock_manager=LocalRunLockManager('l'),\n"
        "    handoff_builder=SchedulerHandoffBuilder(),\n"
        "    run_executor=RunManifestService().execute,\n"
        "    job_state_store=LocalJobStateStore('s'))\n"
        "try:\n"
        "    service.run(request=OrchestratedRunRequest(manifest_path='missing.yml'))\n"
        "except ManifestError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: missing.yml:")
    assert not (tmp_path / "l").exists() and not (tmp_path / "s").exists()
