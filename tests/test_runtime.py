"""RunManifestService and the command kind, with real manifests and real subprocesses."""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import pytest

from dpone_core.errors import ManifestError
from dpone_core.executor import RunManifestService, default_run_id
from dpone_core.executor.command import TAIL_CHARS, run_command
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.request import RunRequest
from dpone_core.executor.results import RunResult
from dpone_core.manifest import CommandProcess, load_manifest

ROOT = Path(__file__).resolve().parent.parent


def command_manifest(tmp_path: Path, argv: list[str], extra: str = "", name: str = "job") -> Path:
    """A one-process command manifest; ``extra`` is indented under the process."""
    lines = ["version: 1", "processes:", f"  {name}:", "    kind: command"]
    lines.append(f"    command: {json.dumps(argv)}")
    lines += [f"    {line}" for line in extra.splitlines() if line]
    path = tmp_path / "m.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Recorder:
    """An injected ``sleep`` that records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def execute(manifest: Path, **kwargs: object) -> tuple[RunResult, str, Recorder]:
    progress = io.StringIO()
    sleep = Recorder()
    request = RunRequest(manifest_path=str(manifest), **kwargs)  # type: ignore[arg-type, unused-ignore]
    result = RunManifestService(progress=progress, sleep=sleep).execute(request)
    return result, progress.getvalue(), sleep


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (PID 1 in a container may not reap)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def wait_until_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def stray_pids() -> Iterator[list[int]]:
    """Pids a test started indirectly; killed afterwards so a failing test leaves nothing."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


# --------------------------------------------------------------------------- command kind


def test_exit_zero_passes_with_tails_and_exit_code(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", "echo out; echo err >&2"])
    result, progress, _ = execute(manifest, run_id="r1")
    assert result.passed
    assert result.run_id == "r1"
    assert result.process == "job"
    assert result.result.status == "passed"
    assert result.result.exit_code == 0
    assert result.result.errors == []
    assert result.result.stdout_tail == "out\n"
    assert result.result.stderr_tail == "err\n"
    assert result.result.duration_seconds > 0
    assert [a.status for a in result.attempts] == ["passed"]
    assert "try 1/1" in progress


def test_nonzero_exit_fails_with_its_code(tmp_path: Path) -> None:
    result, _, _ = execute(command_manifest(tmp_path, ["sh", "-c", "exit 3"]))
    assert not result.passed
    assert result.result.status == "failed"
    assert result.result.exit_code == 3
    assert result.result.errors == ["command exited with code 3"]
    assert result.attempts[0].error == "command exited with code 3"


def test_killed_by_a_signal_is_reported(tmp_path: Path) -> None:
    # ``$$`` is the manifest's escape for a literal ``$``, so the shell's ``$$`` is ``$$$$``.
    result, _, _ = execute(command_manifest(tmp_path, ["sh", "-c", "kill -9 $$$$"]))
    assert not result.passed
    assert result.result.exit_code == -9
    assert result.result.errors == ["command was killed by SIGKILL (exit code -9)"]


def test_command_not_found(tmp_path: Path) -> None:
    result, _, _ = execute(command_manifest(tmp_path, ["dpone-no-such-command-xyz", "a"]))
    assert not result.passed
    assert result.result.errors == ["command not found: dpone-no-such-command-xyz"]
    assert result.result.exit_code is None


def test_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPONE_TEST_INHERITED_VAR", "inherited")
    names = [
        "DPONE_RUN_ID",
        "DPONE_ATTEMPT",
        "DPONE_JOB_ATTEMPT",
        "DPONE_PROCESS",
        "DPONE_PARTITION_START",
        "DPONE_PARTITION_END",
        "DPONE_TEST_INHERITED_VAR",
        "REPORT_MODE",
        "OVERRIDDEN",
    ]
    script = "import json, os, sys; print(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))"
    manifest = command_manifest(
        tmp_path,
        [sys.executable, "-c", script, *names],
        extra="env: {REPORT_MODE: full, OVERRIDDEN: from-manifest}",
        name="refresh_report",
    )
    result, _, _ = execute(
        manifest,
        run_id="daily_2026_06_05",
        job_attempt=3,
        env={"OVERRIDDEN": "from-request"},
        window_start="2026-06-05T00:00:00",
        window_end="2026-06-06T00:00:00",
    )
    assert result.passed, result.result
    assert result.result.stdout_tail is not None
    assert json.loads(result.result.stdout_tail) == {
        "DPONE_RUN_ID": "daily_2026_06_05",
        "DPONE_ATTEMPT": "1",
        "DPONE_JOB_ATTEMPT": "3",
        "DPONE_PROCESS": "refresh_report",
        "DPONE_PARTITION_START": "2026-06-05T00:00:00",
        "DPONE_PARTITION_END": "2026-06-06T00:00:00",
        "DPONE_TEST_INHERITED_VAR": "inherited",
        "REPORT_MODE": "full",
        "OVERRIDDEN": "from-request",
    }


def test_partition_variables_are_absent_without_a_window(tmp_path: Path) -> None:
    manifest = command_manifest(
        tmp_path, ["sh", "-c", 'echo "[$${DPONE_PARTITION_START-unset}]"; echo $DPONE_ATTEMPT']
    )
    result, _, _ = execute(manifest)
    assert result.result.stdout_tail == "[unset]\n1\n"


def test_default_cwd_is_the_manifest_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = command_manifest(project, [sys.executable, "-c", "import os; print(os.getcwd())"])
    monkeypatch.chdir(elsewhere)
    result, _, _ = execute(Path(os.path.relpath(manifest)))
    assert result.result.stdout_tail == f"{project}\n"


def test_cwd_is_relative_to_the_manifest_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "refresh.sh").write_text("echo refreshed in $(pwd)\n")
    manifest = command_manifest(tmp_path, ["sh", "refresh.sh"], extra="cwd: scripts")
    monkeypatch.chdir("/")
    result, _, _ = execute(manifest)
    assert result.passed, result.result
    assert result.result.stdout_tail == f"refreshed in {tmp_path / 'scripts'}\n"


def test_missing_cwd_fails_the_try(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["true"], extra="cwd: nowhere")
    result, _, _ = execute(manifest)
    assert not result.passed
    assert result.result.errors == [f"working directory not found: {tmp_path / 'nowhere'}"]


def test_timeout_kills_the_whole_process_group(tmp_path: Path, stray_pids: list[int]) -> None:
    script = "sleep 60 & echo $! > grandchild.pid; echo $$$$ > child.pid; echo started; wait"
    manifest = command_manifest(tmp_path, ["sh", "-c", script], extra="timeout_seconds: 0.5")
    started = time.monotonic()
    result, _, _ = execute(manifest)
    elapsed = time.monotonic() - started
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    child = int((tmp_path / "child.pid").read_text())
    stray_pids += [grandchild, child]
    assert not result.passed
    assert result.result.errors == ["command timed out after 0.5s (process group killed)"]
    assert result.result.exit_code is not None and result.result.exit_code < 0
    assert result.result.stdout_tail == "started\n"  # output before the kill is kept
    assert not is_running(child)
    assert not is_running(grandchild)
    assert elapsed < 5


def test_leftover_background_processes_do_not_outlive_the_command(
    tmp_path: Path, stray_pids: list[int]
) -> None:
    # The background sleep inherits stdout: without cleanup it would also hang the reader.
    manifest = command_manifest(tmp_path, ["sh", "-c", "sleep 60 & echo $! > bg.pid; echo done"])
    started = time.monotonic()
    result, _, _ = execute(manifest)
    background = int((tmp_path / "bg.pid").read_text())
    stray_pids.append(background)
    assert result.passed
    assert result.result.stdout_tail == "done\n"
    assert not is_running(background)
    assert time.monotonic() - started < 5


def test_output_tails_are_bounded(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for i in range(10000): print('line', i, 'x' * 40)\n"
        "print('STDOUT-END')\n"
        "for i in range(10000): print('err', i, 'y' * 40, file=sys.stderr)\n"
        "print('STDERR-END', file=sys.stderr)\n"
    )
    result, _, _ = execute(command_manifest(tmp_path, [sys.executable, "-c", script]))
    out, err = result.result.stdout_tail, result.result.stderr_tail
    assert out is not None and err is not None
    assert len(out) <= TAIL_CHARS
    assert len(err) <= TAIL_CHARS
    assert out.endswith("STDOUT-END\n")
    assert err.endswith("STDERR-END\n")
    assert out.startswith("...")
    assert "line 9999" in out


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


class Interrupted(BaseException):
    """Stands in for a SIGTERM-raised exception in the orchestrator."""


def test_an_interrupt_while_waiting_kills_the_group_and_propagates(
    tmp_path: Path, stray_pids: list[int]
) -> None:
    manifest = command_manifest(
        tmp_path, ["sh", "-c", "sleep 60 & echo $! > grandchild.pid; echo $$$$ > child.pid; wait"]
    )
    loaded = load_manifest(manifest)
    name, process = loaded.select(None)
    assert isinstance(process, CommandProcess)
    ctx = ProcessContext(
        manifest_path=loaded.path,
        process_name=name,
        run_id="r",
        try_number=1,
        job_attempt=1,
        generation=1,
        connections={},
    )
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(Interrupted):
            run_command(process, ctx)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int(wait_for_file(tmp_path / "child.pid"))
    grandchild = int(wait_for_file(tmp_path / "grandchild.pid"))
    stray_pids += [child, grandchild]
    assert not is_running(child)
    assert not is_running(grandchild)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_kill_9_of_the_orchestrator_does_not_leave_the_command_running(
    tmp_path: Path, stray_pids: list[int]
) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", "echo $$$$ > child.pid; exec sleep 60"])
    code = (
        "import sys\n"
        "from dpone_core.executor import RunManifestService\n"
        "from dpone_core.executor.request import RunRequest\n"
        "RunManifestService().execute(RunRequest(manifest_path=sys.argv[1]))\n"
    )
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", code, str(manifest)], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        child = int(wait_for_file(tmp_path / "child.pid"))
        stray_pids.append(child)
        time.sleep(0.1)  # let the exec happen
        assert is_running(child)
        orchestrator.kill()
        orchestrator.wait()
        assert wait_until_gone(child), "the command survived its orchestrator"
    finally:
        orchestrator.kill()
        orchestrator.wait()


# --------------------------------------------------------------------------- secrets


def test_secret_values_never_appear_in_the_run_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = f"declared-{secrets.token_hex(8)}"
    named = f"named-{secrets.token_hex(8)}"
    requested = f"requested-{secrets.token_hex(8)}"
    monkeypatch.setenv("DPONE_TEST_WAREHOUSE_KEY", declared)  # declared, never referenced
    monkeypatch.setenv("DPONE_TEST_API_TOKEN", named)
    script = (
        'echo "$DPONE_TEST_WAREHOUSE_KEY $API_TOKEN $REQUEST_PASSWORD"; '
        'echo "$DPONE_TEST_WAREHOUSE_KEY $API_TOKEN $REQUEST_PASSWORD" >&2; exit 1'
    )
    path = tmp_path / "m.yml"
    path.write_text(
        "version: 1\n"
        "secrets: [DPONE_TEST_WAREHOUSE_KEY]\n"
        "processes:\n"
        "  leak:\n"
        "    kind: command\n"
        f"    command: {json.dumps(['sh', '-c', script])}\n"
        "    env: {API_TOKEN: '${DPONE_TEST_API_TOKEN}'}\n"
    )
    result, progress, _ = execute(path, retry_attempts=1, env={"REQUEST_PASSWORD": requested})
    dumped = json.dumps(result.to_dict())
    for value in (declared, named, requested):
        assert value not in dumped
        assert value not in progress
    assert result.result.stdout_tail == "*** *** ***\n"
    assert result.result.stderr_tail == "*** *** ***\n"


# --------------------------------------------------------------------------- retries

COUNTER = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "try $n"; '


def test_fails_twice_then_passes_with_two_retries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", COUNTER + '[ "$n" -ge 3 ]'])
    result, progress, sleep = execute(
        manifest, run_id="r", retry_attempts=2, retry_backoff_seconds=7
    )
    assert result.passed
    assert [a.attempt for a in result.attempts] == [1, 2, 3]
    assert [a.status for a in result.attempts] == ["failed", "failed", "passed"]
    assert [a.error for a in result.attempts] == [
        "command exited with code 1",
        "command exited with code 1",
        None,
    ]
    assert result.result.stdout_tail == "try 3\n"
    assert sleep.calls == [7, 7]
    assert progress.count("retrying in 7s") == 2
    assert capsys.readouterr().out == ""  # progress never goes to stdout


def test_fails_twice_with_one_retry_records_both_errors(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", COUNTER + "exit $((n + 1))"])
    result, progress, sleep = execute(manifest, retry_attempts=1, retry_backoff_seconds=1)
    assert not result.passed
    assert [a.error for a in result.attempts] == [
        "command exited with code 2",
        "command exited with code 3",
    ]
    assert result.result.errors == ["command exited with code 3"]
    assert (tmp_path / "count").read_text().strip() == "2"
    assert sleep.calls == [1]
    assert "failed after 2 tries" in progress


def test_each_try_sees_its_number(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", "echo $DPONE_ATTEMPT >> tries; exit 1"])
    execute(manifest, retry_attempts=2)
    assert (tmp_path / "tries").read_text().split() == ["1", "2", "3"]


def test_real_backoff_sleeps(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["false"])
    request = RunRequest(manifest_path=str(manifest), retry_attempts=1, retry_backoff_seconds=0.2)
    started = time.monotonic()
    result = RunManifestService(progress=io.StringIO()).execute(request)
    assert len(result.attempts) == 2
    assert time.monotonic() - started >= 0.2


def test_an_exception_in_a_process_kind_is_a_failed_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry loop is under test: a process kind that raises (a bug, a driver fault)
    # stands in for one. Bad input such as a NUL byte in argv is refused earlier, as a
    # ManifestError (tests/hostile/).
    import dpone_core.executor.service as service_module

    def raising_kind(*_: object) -> None:
        raise ValueError("embedded null byte")

    monkeypatch.setattr(service_module, "run_command", raising_kind)
    path = command_manifest(tmp_path, ["true"], name="nul")
    result, _, sleep = execute(path, retry_attempts=1)
    assert not result.passed
    assert [a.error for a in result.attempts] == ["ValueError: embedded null byte"] * 2
    assert result.result.errors == ["ValueError: embedded null byte"]
    assert sleep.calls == []  # no backoff configured


def test_a_manifest_error_is_raised_and_never_retried(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text("version: 1\nprocesses:\n  a: {kind: command, command: []}\n")
    sleep = Recorder()
    service = RunManifestService(progress=io.StringIO(), sleep=sleep)
    with pytest.raises(ManifestError) as info:
        service.execute(RunRequest(manifest_path=str(path), retry_attempts=3))
    assert info.value.field == "processes.a.command"
    assert sleep.calls == []


def test_an_unknown_selector_is_a_manifest_error(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["true"])
    service = RunManifestService(progress=io.StringIO(), sleep=Recorder())
    with pytest.raises(ManifestError, match="available selectors: 'job'"):
        service.execute(RunRequest(manifest_path=str(manifest), selector="jobs", retry_attempts=2))


def test_a_missing_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    service = RunManifestService(progress=io.StringIO(), sleep=Recorder())
    with pytest.raises(ManifestError, match="file not found"):
        service.execute(RunRequest(manifest_path=str(tmp_path / "absent.yml")))


# --------------------------------------------------------------------------- run ids


def test_default_run_id_is_manifest_selector_and_utc_date(tmp_path: Path) -> None:
    before = datetime.now(UTC).strftime("%Y_%m_%d")
    run_id = default_run_id("orders")
    assert default_run_id("orders", "/any/where/shop.yml").startswith("shop.orders_")
    after = datetime.now(UTC).strftime("%Y_%m_%d")
    assert run_id in {f"orders_{before}", f"orders_{after}"}

    manifest = command_manifest(tmp_path, ["true"], name="nightly")
    result, _, _ = execute(manifest)
    stem = manifest.stem
    assert result.run_id in {f"{stem}.nightly_{before}", f"{stem}.nightly_{after}"}


def test_an_explicit_run_id_is_kept(tmp_path: Path) -> None:
    manifest = command_manifest(tmp_path, ["sh", "-c", "echo $DPONE_RUN_ID"])
    result, _, _ = execute(manifest, run_id="custom/run id")
    assert result.run_id == "custom/run id"
    assert result.result.stdout_tail == "custom/run id\n"
