"""The admission is durable before the command starts (issue 13: no fsync traded for speed).

Two views of one real `dpone orchestrate run` of a `command` process:

* the command itself reads the job state file when it starts: it exists, says ``running``,
  attempt 1, and is this run's (written, not merely planned);
* under ``strace -f -y`` (installed by scripts/test.sh), the orchestrator's system calls are in
  this order: fsync of the state's temporary file, its rename onto
  ``<run id>.job_state.json``, fsync of the state directory (the rename itself durable), and
  only then any ``execve`` of the command. A machine crash at any point after the command
  started therefore finds the run recorded as running, and a re-run is refused, not repeated.
  The outcome is held to the same order before the report is returned.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

from tests.support import Workspace

_MARKER = "DPONE-DURABLE-PROBE"
#: The command: read the job state as it is when the command starts, record what it says.
_PROBE = f"""# {_MARKER}
import json, os
path = os.path.join(".dpone", "orchestration-state", os.environ["DPONE_RUN_ID"] + ".job_state.json")
with open(path, "rb") as fh:
    state = json.loads(fh.read())
with open("seen.json", "w") as fh:
    json.dump({{"status": state["status"], "attempt": state["attempt"],
               "run_id": state["run_id"]}}, fh)
"""


def _write(ws: Workspace) -> None:
    ws.write_manifest({"job": {"kind": "command", "command": [sys.executable, "-c", _PROBE]}})


def test_command_sees_its_running_state(ws: Workspace) -> None:
    _write(ws)
    code, _, err = ws.orchestrate("--manifest", "m.yml", "--run-id", "r1")
    assert code == 0, err
    seen = json.loads((ws.root / "seen.json").read_text())
    assert seen == {"status": "running", "attempt": 1, "run_id": "r1"}
    assert ws.state("r1")["status"] == "committed"


def _joined(lines: list[str]) -> list[str]:
    """strace's lines, a call interrupted by another process's ("<unfinished ...>") joined
    with its "<... resumed>" line, at the place where it completed."""
    pending: dict[str, str] = {}
    out: list[str] = []
    for line in lines:
        pid, call = line.split(None, 1)  # strace pads short pids
        if call.endswith("<unfinished ...>"):
            pending[pid] = call.removesuffix("<unfinished ...>").rstrip()
            continue
        resumed = re.match(r"<\.\.\. \w+ resumed>\s?(.*)$", call)
        if resumed and pid in pending:
            call = pending.pop(pid) + resumed.group(1)
        out.append(f"{pid} {call}")
    return out


def test_state_fsynced_and_renamed_durably_before_the_command_execs(ws: Workspace) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is needed (scripts/test.sh installs it: apt-get install -y strace)"
    _write(ws)
    trace = ws.root / "trace.txt"
    argv = [strace, "-f", "-y", "-qq", "-e", "trace=openat,rename,renameat,renameat2,fsync,"
            "fdatasync,execve", "-e", "signal=none", "-s", "256", "-o", str(trace),
            *ws.argv("orchestrate", "run", "--format", "json", "--manifest", "m.yml",
                     "--run-id", "r1")]  # fmt: skip
    proc = subprocess.run(argv, cwd=ws.root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((ws.root / "seen.json").read_text())["status"] == "running"

    lines = _joined(trace.read_text().splitlines())
    orchestrator = lines[0].split(None, 1)[0]  # the first line is the CLI's own execve
    state_dir = str(ws.state_dir.resolve())
    tmp = re.compile(re.escape(state_dir) + r"/\.r1\.job_state\.json\.[^>]+\.tmp>")
    events: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        pid, call = line.split(None, 1)  # strace pads short pids
        if (
            pid == orchestrator
            and call.startswith(("fsync(", "fdatasync("))
            and call.endswith("= 0")
        ):
            if tmp.search(call):
                events.append((i, "fsync state tmp"))
            elif f"<{state_dir}>)" in call:
                events.append((i, "fsync state dir"))
        elif pid == orchestrator and call.startswith("rename") and call.endswith("= 0"):
            if ".r1.job_state.json." in call and '/r1.job_state.json"' in call:
                events.append((i, "rename state"))
        elif call.startswith("execve(") and _MARKER in call:
            events.append((i, "exec command"))
    names = [name for _, name in events]
    assert "exec command" in names, "the command's execve was not traced"
    first_exec = names.index("exec command")
    # admission: fsync(tmp) -> rename -> fsync(dir), all before the command exists
    assert names[:first_exec] == ["fsync state tmp", "rename state", "fsync state dir"], names
    # the outcome: the same three, after the command, before the CLI exits
    after = [n for n in names[first_exec:] if n != "exec command"]
    assert after == ["fsync state tmp", "rename state", "fsync state dir"], names
    assert ws.state("r1")["status"] == "committed"
