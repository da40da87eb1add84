"""Start many real processes at one instant and keep the winner busy until every loser decided.

Every racer is started (and its interpreter imported) before the moment comes,
so all of them reach the code under test together: exec_at.py execs any
command line at a fixed time; cli_at.py imports the `dpone` CLI, says it is
ready and runs it when told to go, once every racer is ready.

The winner's command is expected to wait for the ``release`` file
(``recorder.py --until release``); it is written only once every other racer
has exited. Holding until then, rather than for a fixed time, keeps a
race honest on a loaded machine: no racer can arrive after the winner
finished and legitimately win a second time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.workspace import CLI_AT, EXEC_AT


@dataclass
class RacerResult:
    returncode: int
    #: The JSON report on stdout ({} if there was none).
    report: dict[str, Any]
    stderr: str


def race_at_once(
    argv_for: Callable[[int], Sequence[str]],
    *,
    n: int,
    cwd: Path,
    release: Path,
    env: Mapping[str, str] | None = None,
    start_in: float = 3.0,
    timeout: float = 90.0,
    barrier: str = EXEC_AT,
) -> list[RacerResult]:
    """Run racer i (0..n-1) at one instant; write ``release`` once n-1 of them exited.

    ``argv_for(i)`` is a whole command line for the default ``barrier``
    (EXEC_AT), or ``dpone`` arguments for ``barrier=CLI_AT``. Returns one
    result per racer, in order. A racer's stdout must be one JSON document
    (``--format json``) or empty.
    """
    gate = Path(tempfile.mkdtemp(prefix="race-"))
    go = gate / "go"

    def start_args(i: int) -> list[str]:
        if barrier == CLI_AT:
            return [str(gate / f"ready-{i}"), str(go)]
        return [str(time.time() + start_in)]

    procs = [
        subprocess.Popen(
            [sys.executable, barrier, *start_args(i), *argv_for(i)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + timeout
        if barrier == CLI_AT:
            while sum(1 for _ in gate.glob("ready-*")) < n:
                early = next((p for p in procs if p.poll() is not None), None)
                if early is not None:
                    _out, err = early.communicate()
                    raise AssertionError(f"a racer exited before the start: {err}")
                assert time.monotonic() < deadline, "the racers never got ready"
                time.sleep(0.01)
            go.touch()
        while sum(p.poll() is not None for p in procs) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        release.write_text("go")
        assert time.monotonic() < deadline, "the racers never finished"
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(
                RacerResult(proc.returncode, json.loads(out) if out.strip() else {}, err)
            )
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(gate, ignore_errors=True)
