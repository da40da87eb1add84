"""A command's whole process tree ends with its orchestrator, even after ``kill -9``.

Real `dpone orchestrate run` processes, real shell scripts with background workers,
real signals. Every process of a command's tree carries a unique ``DPONE_TREE_MARK``
in its environment (the manifest's ``env``), so "nothing of the tree is left" is
checked by scanning ``/proc/*/environ``, which also finds processes whose pid the
test never learned. Waits poll with generous deadlines; the only fixed pauses are
for checking that something does *not* change.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import Workspace

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG (Linux)"
)

#: How long a killed tree may take to disappear before the test fails (the brief says
#: ~2 s; this is a deadline for polling, not an expected duration).
GONE_WITHIN = 5.0
#: How long heartbeat files are watched for a write that must not happen (workers
#: write every 50 ms).
QUIET_FOR = 0.6

# A worker: records its pid, optionally starts the next worker of a chain (nested
# shells, no new session anywhere), then writes a heartbeat every 50 ms forever.
WORKER_SH = """\
name=$1; shift
echo $$ > "pid.$name"
if [ $# -gt 0 ]; then sh ./worker.sh "$@" & fi
n=0
while :; do n=$((n + 1)); echo "$n" > "hb.$name"; sleep 0.05; done
"""


def _main_sh(chains: list[list[str]]) -> str:
    lines = ['if [ -e resume.flag ]; then echo "resumed $DPONE_RUN_ID"; exit 0; fi']
    lines += [f"sh ./worker.sh {' '.join(chain)} &" for chain in chains]
    lines += ["echo workers started", "wait"]
    return "\n".join(lines) + "\n"


class Tree:
    """One test's workspace, manifest and the marker its command tree carries."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.mark = f"tree-{secrets.token_hex(8)}"
        self.names: list[str] = []

    def manifest(self, command: list[str], **extra: Any) -> None:
        process = {"kind": "command", "command": command, "env": {"DPONE_TREE_MARK": self.mark}}
        self.ws.write_manifest({"job": {**process, **extra}})

    def workers(self, chains: list[list[str]], **extra: Any) -> None:
        (self.ws.root / "worker.sh").write_text(WORKER_SH)
        (self.ws.root / "main.sh").write_text(_main_sh(chains))
        self.names = [name for chain in chains for name in chain]
        self.manifest(["sh", "./main.sh"], **extra)

    def live(self) -> list[int]:
        """Pids of live (non-zombie) processes that carry this tree's marker."""
        needle = f"DPONE_TREE_MARK={self.mark}".encode()
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    environ = handle.read().split(b"\0")
                if needle in environ and _is_running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue  # exited meanwhile, or not ours
        return found

    def worker_pids(self) -> dict[str, int]:
        return {name: int(_read(self.ws.root / f"pid.{name}")) for name in self.names}

    def heartbeats(self) -> dict[str, tuple[str, int]]:
        beats = {}
        for name in self.names:
            path = self.ws.root / f"hb.{name}"
            beats[name] = (_read(path), path.stat().st_mtime_ns)
        return beats

    def wait_until_beating(self) -> None:
        """Until every worker has recorded its pid and written two different heartbeats."""
        first = _poll(lambda: self._all_beating() and self.heartbeats(), "workers up")
        _poll(
            lambda: all(beat[0] != first[name][0] for name, beat in self.heartbeats().items()),
            "workers beating",
        )

    def _all_beating(self) -> bool:
        root = self.ws.root
        return all((root / f"pid.{n}").exists() and _read(root / f"hb.{n}") for n in self.names)

    def assert_tree_gone(self) -> None:
        deadline = time.monotonic() + GONE_WITHIN
        while self.live() and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self.live()
        assert not left, f"the command tree outlived its orchestrator: {_describe(left)}"

    def assert_quiet(self, since: dict[str, tuple[str, int]]) -> None:
        assert self.heartbeats() == since, "a worker of the killed tree still writes"

    def kill_leftovers(self) -> None:
        for _ in range(50):
            pids = self.live()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    continue
            time.sleep(0.02)


@pytest.fixture
def tree(ws: Workspace) -> Iterator[Tree]:
    t = Tree(ws)
    yield t
    t.kill_leftovers()  # a failing test (or the old code) must not leave workers behind


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _describe(pids: list[int]) -> str:
    rows = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            cmdline = b"?"
        rows.append(f"{pid}: {cmdline.decode(errors='replace').strip()}")
    return "; ".join(rows)


def _poll(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {what}")


def _start(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return ws.popen("orchestrate", "run", "--format", "json", "--manifest", "m.yml", *args)


def _kill_9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)  # the orchestrator only, never its group
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


# --------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize(
    "chains",
    [
        pytest.param([["a"], ["b"], ["c"]], id="three-workers"),
        pytest.param([["a", "a1", "a2"], ["b", "b1"]], id="nested-shells"),
    ],
)
def test_kill_9_of_the_orchestrator_kills_every_worker_and_resume_does_not_overlap(
    ws: Workspace, tree: Tree, chains: list[list[str]]
) -> None:
    tree.workers(chains)
    orchestrator = _start(ws, "--run-id", "r1")
    try:
        tree.wait_until_beating()
        pids = tree.worker_pids()
        assert all(_is_running(pid) for pid in pids.values())
        _kill_9(orchestrator)
    finally:
        _stop(orchestrator)

    tree.assert_tree_gone()
    assert not any(_is_running(pid) for pid in pids.values())
    last = tree.heartbeats()
    time.sleep(QUIET_FOR)
    tree.assert_quiet(last)

    assert ws.state("r1")["status"] == "running"  # kill -9 cannot be handled
    (ws.root / "resume.flag").touch()
    code, report, err = ws.orchestrate(
        "--manifest", "m.yml", "--run-id", "r1", "--resume-policy", "resume"
    )
    assert code == 0, err
    assert report["passed"] is True
    assert report["run_result"]["result"]["stdout_tail"] == "resumed r1\n"
    time.sleep(QUIET_FOR)
    tree.assert_quiet(last)  # the old workers never wrote again
    assert not tree.live()


def test_kill_9_at_any_moment_of_start_up_leaves_nothing(ws: Workspace, tree: Tree) -> None:
    """The race of the orchestrator dying while the command is being started."""
    tree.workers([["a", "a1"], ["b"]])
    rng = random.Random(20240917)
    for trial in range(12):
        orchestrator = _start(ws, "--run-id", f"race{trial}")
        try:
            time.sleep(rng.uniform(0.0, 0.6))  # when to kill, not an assertion
            orchestrator.send_signal(signal.SIGKILL)
        finally:
            _stop(orchestrator)
        tree.assert_tree_gone()


# --------------------------------------------------------------------------- unchanged behaviour


def _result(report: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = report["run_result"]["result"]
    return result


@pytest.mark.parametrize(
    ("script", "exit_code", "error"),
    [
        ("exit 0", 0, None),
        ("exit 3", 3, "command exited with code 3"),
        ("kill -KILL $$$$", -9, "command was killed by SIGKILL (exit code -9)"),
        ("kill -TERM $$$$", -15, "command was killed by SIGTERM (exit code -15)"),
        ("exec sh -c 'exit 5'", 5, "command exited with code 5"),
    ],
)
def test_exit_codes_and_output_pass_through(
    ws: Workspace, tree: Tree, script: str, exit_code: int, error: str | None
) -> None:
    prefix = 'echo "out $DPONE_RUN_ID $DPONE_PROCESS"; echo err >&2; '
    tree.manifest(["sh", "-c", prefix + script])
    code, report, err = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    result = _result(report)
    assert code == (0 if exit_code == 0 else 1), err
    assert result["exit_code"] == exit_code
    assert result["errors"] == ([] if error is None else [error])
    assert result["stdout_tail"] == "out r1 job\n"
    assert result["stderr_tail"] == "err\n"


def test_the_command_sees_its_stdin_environment_and_signal_dispositions(
    ws: Workspace, tree: Tree
) -> None:
    """Nothing between the orchestrator and the command shows: same fds, env, signals.

    Read by ``sh`` and ``grep``: Python would ignore SIGPIPE and SIGXFSZ itself.
    """
    script = (
        'echo "stdin:$(cat)"; env | grep -E "^(DPONE_|LC_|LANG=)" | sort; '
        # the last command is no pipeline, so the shell holds no pipe end while ls looks
        "grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/$$$$/fd"
    )
    tree.manifest(["sh", "-c", script], env={"DPONE_TREE_MARK": tree.mark, "LANG": "C"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    proc = subprocess.run(
        ws.argv("orchestrate", "run", "--format", "json", "--manifest", "m.yml", "--run-id", "r1"),
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "LANG": "C.UTF-8"},  # the orchestrator itself is not in the C locale
    )
    assert proc.returncode == 0, proc.stderr
    lines = _result(json.loads(proc.stdout))["stdout_tail"].splitlines()
    assert lines == [
        "stdin:",
        "DPONE_ATTEMPT=1",
        "DPONE_JOB_ATTEMPT=1",
        "DPONE_PROCESS=job",
        "DPONE_RUN_ID=r1",
        f"DPONE_TREE_MARK={tree.mark}",
        "LANG=C",  # and no LC_CTYPE added by a Python start-up in between
        "SigBlk:\t0000000000000000",
        "SigIgn:\t0000000000000000",
        *["0", "1", "2"],  # nothing else is inherited
    ]


def test_a_command_that_cannot_start_is_reported_as_before(ws: Workspace, tree: Tree) -> None:
    tree.manifest(["no-such-command-dpone"])
    code, report, _ = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1
    assert _result(report)["errors"] == ["command not found: no-such-command-dpone"]
    (ws.root / "not-executable.sh").write_text("echo hi\n")
    tree.manifest(["./not-executable.sh"])
    code, report, _ = ws.orchestrate("--manifest", "m.yml", "--run-id", "r2")
    assert code == 1
    assert _result(report)["errors"] == ["command is not executable: ./not-executable.sh"]


def test_a_timeout_kills_the_whole_tree(ws: Workspace, tree: Tree) -> None:
    tree.workers([["a", "a1"], ["b"], ["c"]], timeout_seconds=1.5)
    code, report, err = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 1, err
    result = _result(report)
    assert result["errors"] == ["command timed out after 1.5s (process group killed)"]
    assert result["stdout_tail"] == "workers started\n"
    assert all(pid > 0 for pid in tree.worker_pids().values())  # they did start
    tree.assert_tree_gone()
    last = tree.heartbeats()
    time.sleep(QUIET_FOR)
    tree.assert_quiet(last)


def test_sigterm_to_the_orchestrator_fails_the_attempt_and_kills_the_tree(
    ws: Workspace, tree: Tree
) -> None:
    tree.workers([["a", "a1"], ["b"], ["c"]])
    orchestrator = _start(ws, "--run-id", "r1")
    try:
        tree.wait_until_beating()
        orchestrator.send_signal(signal.SIGTERM)
        out, err = orchestrator.communicate(timeout=60)
    finally:
        _stop(orchestrator)
    assert orchestrator.returncode == 1, err
    report = json.loads(out)
    assert report["status"] == "failed"
    assert report["blockers"] == ["run.interrupted"]
    assert "SIGTERM" in ws.state("r1")["transitions"][-1]["reason"]
    tree.assert_tree_gone()
    last = tree.heartbeats()
    time.sleep(QUIET_FOR)
    tree.assert_quiet(last)
