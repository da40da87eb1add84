"""Watching command tries (dpone_core.executor.command_observer), with real subprocesses.

An observer adds variables to each try's command, gets its output as redacted
whole lines while it runs, and the try's result at the end; the tails are kept
as without one. Without an observer nothing changes, and Dagster Pipes variables
of dpone's own environment never reach a command.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dpone_core.executor import RunManifestService
from dpone_core.executor.command_observer import (
    LINE_BYTES,
    Stream,
    command_observer,
    observing_commands,
)
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.request import RunRequest
from dpone_core.executor.results import ProcessResult, RunResult

PY = sys.executable


@dataclass
class Watch:
    """One watched try: what it was given and what it saw."""

    try_number: int
    env: Mapping[str, str]
    output_texts: list[tuple[Stream, str]] = field(default_factory=list)
    result: ProcessResult | None = None
    exited: bool = False
    failing: bool = False
    #: Set once the first output arrives (the command is still running then).
    first_output: threading.Event = field(default_factory=threading.Event)

    def output(self, stream: Stream, text: str) -> None:
        self.output_texts.append((stream, text))
        self.first_output.set()
        if self.failing:
            raise RuntimeError("observer broke")

    def ended(self, result: ProcessResult) -> None:
        self.result = result

    def text(self, stream: Stream) -> str:
        return "".join(text for s, text in self.output_texts if s == stream)


@dataclass
class Observer:
    failing: bool = False
    watches: list[Watch] = field(default_factory=list)

    @contextmanager
    def __call__(self, ctx: ProcessContext) -> Iterator[Watch]:
        watch = Watch(ctx.try_number, {"OBSERVED_TRY": str(ctx.try_number)}, failing=self.failing)
        self.watches.append(watch)
        yield watch
        watch.exited = True


def manifest(
    tmp_path: Path, code: str, env: Mapping[str, str] | None = None, **fields: object
) -> Path:
    process = {"kind": "command", "command": [PY, "-c", code], "env": dict(env or {}), **fields}
    path = tmp_path / "m.yml"
    path.write_text(json.dumps({"version": 1, "processes": {"job": process}}))
    return path


def execute(path: Path, **kwargs: object) -> RunResult:
    request = RunRequest(manifest_path=str(path), **kwargs)  # type: ignore[arg-type, unused-ignore]
    return RunManifestService(progress=io.StringIO(), sleep=lambda _: None).execute(request)


def test_each_try_gets_the_observers_env_and_its_output_live(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "print('try', os.environ['OBSERVED_TRY'], 'of', os.environ['DPONE_ATTEMPT'], flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        "print('password=hunter2-xyz', flush=True)\n"
        "sys.exit(0 if os.environ['OBSERVED_TRY'] == '2' else 3)\n"
    )
    observer = Observer()
    with observing_commands(observer):
        result = execute(manifest(tmp_path, code), retry_attempts=2)
    assert result.passed
    assert [w.try_number for w in observer.watches] == [1, 2]  # the loop stops at a pass
    first, second = observer.watches
    assert first.text("stdout") == "try 1 of 1\npassword=***\n"
    assert first.text("stderr") == "to stderr\n"
    assert first.result is not None and first.result.status == "failed"
    assert second.result is not None and second.result.status == "passed"
    assert first.exited and second.exited
    # The tails are kept as without an observer.
    assert result.result.stdout_tail == "try 2 of 2\npassword=***\n"
    assert command_observer() is None  # the scope ended


def test_output_arrives_while_the_command_runs(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = (
        "import os, time\n"
        "print('before the gate', flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
        "print('after the gate', flush=True)\n"
    )
    observer = Observer()
    outcome: list[RunResult] = []

    def run() -> None:
        with observing_commands(observer):
            outcome.append(execute(manifest(tmp_path, code)))

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not observer.watches and time.monotonic() < deadline:
            time.sleep(0.02)
        assert observer.watches and observer.watches[0].first_output.wait(30)
        assert observer.watches[0].text("stdout") == "before the gate\n"
    finally:
        gate.touch()
        worker.join(60)
    assert outcome[0].passed
    assert observer.watches[0].text("stdout") == "before the gate\nafter the gate\n"


def test_a_failing_observer_never_stops_the_command(tmp_path: Path) -> None:
    code = "import sys\nfor n in range(20000): print('line', n)\nsys.stdout.flush()\n"
    observer = Observer(failing=True)
    with observing_commands(observer):
        result = execute(manifest(tmp_path, code))
    assert result.passed, result.result.errors
    assert len(observer.watches[0].output_texts) == 1  # no more output after it raised
    assert result.result.stdout_tail is not None
    assert result.result.stdout_tail.endswith("line 19999\n")


def test_long_and_unterminated_lines(tmp_path: Path) -> None:
    size = LINE_BYTES * 2 + 10
    code = f"import sys\nsys.stdout.write('é' * {size // 2} + '\\n' + 'no newline')\n"
    observer = Observer()
    with observing_commands(observer):
        result = execute(manifest(tmp_path, code))
    assert result.passed
    texts = [text for _, text in observer.watches[0].output_texts]
    assert all(text.endswith("\n") for text in texts)
    assert all(len(text.encode()) <= LINE_BYTES + 1 for text in texts)
    # Cut inside the line, never inside a character; nothing lost, nothing added but the
    # line breaks of the cuts and of the unterminated last line.
    assert "".join(texts).replace("\n", "") == "é" * (size // 2) + "no newline"
    assert texts[-1] == "no newline\n"


def test_a_timeout_still_ends_the_watch(tmp_path: Path) -> None:
    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"
    path = manifest(tmp_path, code, timeout_seconds=1)
    observer = Observer()
    with observing_commands(observer):
        result = execute(path)
    assert not result.passed
    (watch,) = observer.watches
    assert watch.exited and watch.result is not None and watch.result.status == "failed"
    assert watch.text("stdout") == "sleeping\n"


def test_no_observer_no_change(tmp_path: Path) -> None:
    assert command_observer() is None
    result = execute(manifest(tmp_path, "print('plain')"))
    assert result.passed and result.result.stdout_tail == "plain\n"


def test_dpones_own_pipes_variables_never_reach_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dpone launched by Dagster Pipes: its session is its own, not its command's."""
    monkeypatch.setenv("DAGSTER_PIPES_CONTEXT", "dpone-s-own-context")
    monkeypatch.setenv("DAGSTER_PIPES_MESSAGES", "dpone-s-own-messages")
    code = (
        "import os\n"
        "print(os.environ.get('DAGSTER_PIPES_CONTEXT'), os.environ.get('DAGSTER_PIPES_MESSAGES'))\n"
    )
    result = execute(manifest(tmp_path, code))
    assert result.result.stdout_tail == "None None\n"
    # Set on purpose (the manifest's env, the request's env), they are kept.
    explicit = manifest(tmp_path, code, env={"DAGSTER_PIPES_CONTEXT": "from-the-manifest"})
    result = execute(explicit, env={"DAGSTER_PIPES_MESSAGES": "from-the-request"})
    assert result.result.stdout_tail == "from-the-manifest from-the-request\n"
