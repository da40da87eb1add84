"""The code location from the command line: ``definitions.py``, ``workspace.yaml`` and pools.

Each test copies the repository's real ``definitions.py``, ``workspace.yaml`` and
``manifests/`` into a temporary directory (``definitions.py`` keeps ``.dpone/``
next to itself), then runs the real ``dagster`` CLI as a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster_support import REPO, query

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _copy_project(root: Path) -> Path:
    for name in ("definitions.py", "workspace.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "manifests", root / "manifests")
    (root / "scripts").mkdir()
    for name in ("seed_shop.py", "landing_report.py"):
        shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
    return root


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPONE_")}
    env.update(
        DAGSTER_HOME=str(root / "dagster_home"),
        DAGSTER_DISABLE_TELEMETRY="yes",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        **extra,
    )
    (root / "dagster_home").mkdir(exist_ok=True)
    return env


def _dagster(
    root: Path, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGSTER, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_workspace_yaml_loads_the_code_location(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    proc = _dagster(root, "definitions", "validate", "-w", "workspace.yaml", env=_env(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful for code location dpone" in proc.stdout + proc.stderr
    listed = _dagster(root, "asset", "list", "-f", "definitions.py", env=_env(root))
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {
        "reporting/daily_orders",
        "command/shop/refresh_report",
        "warehouse/landing_customers",
        "warehouse/landing_orders",
        "warehouse/landing_products",
    }


def test_dagster_asset_materialize_from_the_command_line(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    env = _env(root)
    seeded = subprocess.run(
        [sys.executable, "scripts/seed_shop.py", "--customers", "20", "--orders", "100"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert seeded.returncode == 0, seeded.stderr
    proc = _dagster(
        root,
        "asset",
        "materialize",
        "-f",
        "definitions.py",
        "--select",
        "warehouse/landing_products,command/shop/refresh_report",
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "warehouse/landing_products (process 'products'): committed" in out
    assert "command/shop/refresh_report (process 'refresh_report'): committed" in out
    assert query(root / "data" / "warehouse.db", "select count(*) from landing_products") == [(50,)]
    states = sorted(
        p.name for p in (root / ".dpone" / "orchestration-state").glob("*.job_state.json")
    )
    assert [s.split("_")[0] for s in states] == ["shop%2Eproducts", "shop%2Erefresh"]


def test_pools_make_dagster_queue_instead_of_the_lock_refusing(tmp_path: Path) -> None:
    """Two Dagster runs of one pool (limit 1): the second waits for the slot and commits.

    The second run starts while the first holds the slot (its command has started and
    sleeps 4 s), so without the pool it would meet the first's lock
    (``lock.concurrent_run``). Two runs that claim a free slot at the same instant can
    both get it on a SQLite instance (Dagster's claim is check-then-insert); dpone's lock
    is the backstop there (docs/dagster.md, "Concurrency: pools and locks"), and this test
    is about the queueing, so it does not start them at the same instant.
    """
    started_marker = tmp_path / "first-started"
    slow = tmp_path / "slow.py"
    slow.write_text(
        f"import pathlib, time\npathlib.Path({str(started_marker)!r}).touch()\ntime.sleep(4)\n"
    )
    (tmp_path / "pool.yml").write_text(
        "version: 1\nprocesses:\n  slow:\n    kind: command\n    concurrency_key: shared\n"
        f"    command: [{sys.executable!r}, {str(slow)!r}]\n"
    )
    (tmp_path / "defs.py").write_text(
        "import dagster as dg\n"
        "from dpone_dagster import DponeResource, build_dpone_assets\n"
        "defs = dg.Definitions(assets=build_dpone_assets(['pool.yml']),\n"
        "                      resources={'dpone': DponeResource()})\n"
    )
    env = _env(tmp_path)
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    default_limit: 1\n"
    )
    # Create the instance's storage once, before two processes race to create it.
    init = subprocess.run(
        [sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get()"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    limit = subprocess.run(
        [DAGSTER, "instance", "concurrency", "set", "shared", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert limit.returncode == 0, limit.stderr
    argv = [DAGSTER, "asset", "materialize", "-f", "defs.py", "--select", "command/pool/slow"]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            with log.open("wb") as sink:
                procs.append(
                    subprocess.Popen(
                        argv, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
                    )
                )
            deadline = time.monotonic() + 90
            while not started_marker.exists() and procs[0].poll() is None:
                assert time.monotonic() < deadline, logs[0].read_text()[-3000:]
                time.sleep(0.05)
        for proc in procs:
            proc.wait(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    outputs = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    for out in outputs:
        assert "command/pool/slow (process 'slow'): committed" in out, out[-6000:]
        assert "lock.concurrent_run" not in out, out[-6000:]
    assert "blocked by limit for pool shared" in outputs[1], outputs[1][-6000:]
    assert time.monotonic() - started >= 8  # the two 4-second runs did not overlap


def test_quickstart_rerun_is_not_a_failure_and_run_config_overrides_the_policy(
    tmp_path: Path,
) -> None:
    """The same partition twice from the CLI: the second exits 0 (refusal observed); op run
    config restarts it for one run without touching the resource's configuration."""
    root = _copy_project(tmp_path)
    env = _env(root)
    seeded = subprocess.run(
        [sys.executable, "scripts/seed_shop.py", "--customers", "20", "--orders", "100"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert seeded.returncode == 0, seeded.stderr
    base = ["asset", "materialize", "-f", "definitions.py"]
    landed = _dagster(root, *base, "--select", "warehouse/landing_orders", env=env)
    assert landed.returncode == 0, (landed.stdout + landed.stderr)[-4000:]
    daily = [*base, "--select", "reporting/daily_orders", "--partition", "2026-11-05"]
    for _ in range(2):
        proc = _dagster(root, *daily, env=env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = proc.stdout + proc.stderr
    assert "blocked" in out and "job_state.already_committed" in out
    config = '{"ops": {"dpone_reporting": {"config": {"resume_policy": "RESTART"}}}}'
    again = _dagster(root, *daily, "--config-json", config, env=env)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-4000:]
    assert "resume policy restart" in out
    state_dir = root / ".dpone" / "orchestration-state"
    (state_file,) = [p for p in state_dir.glob("*.job_state.json") if "daily" in p.name]
    assert '"attempt": 2' in state_file.read_text().replace('"attempt":2', '"attempt": 2')
