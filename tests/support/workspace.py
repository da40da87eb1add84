"""A test workspace: a temporary directory with a manifest writer and a real `dpone` CLI runner.

Also the paths of the helper scripts that stand in for commands and racers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUPPORT = Path(__file__).parent
#: A command process that records its own execution (see recorder.py).
RECORDER = str(SUPPORT / "recorder.py")
#: A barrier for separate processes: ``python EXEC_AT <unix time> <argv...>``.
EXEC_AT = str(SUPPORT / "exec_at.py")
#: The same for `dpone` itself, imported before the instant: ``python CLI_AT <time> <args...>``.
CLI_AT = str(SUPPORT / "cli_at.py")


def recorder_command(*args: str) -> list[str]:
    return [sys.executable, RECORDER, *args]


@dataclass
class Workspace:
    root: Path

    @property
    def lock_dir(self) -> Path:
        return self.root / ".dpone" / "locks"

    @property
    def state_dir(self) -> Path:
        return self.root / ".dpone" / "orchestration-state"

    def write_manifest(
        self,
        processes: dict[str, Any],
        name: str = "m.yml",
        connections: dict[str, str] | None = None,
        **top: Any,
    ) -> Path:
        doc = {"version": 1, **top, "connections": connections or {}, "processes": processes}
        path = self.root / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dpone_core.cli", *args]

    def dpone(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def popen(
        self, *args: str, env: dict[str, str] | None = None, new_session: bool = True
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )

    def orchestrate(self, *args: str, **kw: Any) -> tuple[int, dict[str, Any], str]:
        """Run `dpone orchestrate run --format json ...`; return (exit code, report, stderr)."""
        proc = self.dpone("orchestrate", "run", "--format", "json", *args, **kw)
        report = json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc.returncode, report, proc.stderr

    def state(self, run_id: str) -> dict[str, Any]:
        return self.state_at(self.state_dir, run_id)

    def state_at(self, state_dir: Path, run_id: str) -> dict[str, Any]:
        from dpone_core.state import LocalJobStateStore

        return json.loads(LocalJobStateStore(state_dir).path_for(run_id).read_text())

    def records(self, name: str = "record.txt") -> list[list[str]]:
        path = self.root / name
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def all_text_under(paths: Sequence[Path]) -> str:
    chunks = []
    for base in paths:
        if base.is_file():
            chunks.append(base.read_bytes().decode("utf-8", "replace"))
        elif base.exists():
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    chunks.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)
