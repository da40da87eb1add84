"""Start many real processes at one instant and keep the winner busy until every loser decided.

Every racer is started (and its interpreter imported) before the moment comes
(see exec_at.py), so all of them reach the code under test within a few
milliseconds. The winner's command is expected to wait for the ``release``
file (``recorder.py --until release``); it is written only once every other
racer has exited. Holding until then, rather than for a fixed time, keeps a
race honest on a loaded machine: no racer can arrive after the winner
finished and legitimately win a second time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.workspace import EXEC_AT


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
    start_in: float = 2.0,
    timeout: float = 90.0,
) -> list[RacerResult]:
    """Run ``argv_for(i)`` for i in 0..n-1 at one instant; write ``release`` once n-1 exited.

    Returns one result per racer, in order. A racer's stdout must be one JSON
    document (``--format json``) or empty.
    """
    when = time.time() + start_in
    procs = [
        subprocess.Popen(
            [sys.executable, EXEC_AT, str(when), *argv_for(i)],
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
        while sum(p.poll() is not None for p in procs) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        release.write_text("go")
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
