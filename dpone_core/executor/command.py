"""The ``command`` process kind: run an argv, pass iff it exits 0.

Three properties matter more than convenience here:

* **The command's whole process tree ends with the try.** The command runs under a
  small supervisor (:mod:`dpone_core.executor.supervisor`) that leads a new process
  group; a timeout, an interrupt of the orchestrator, or the command's normal exit
  all end with the group killed. Otherwise a leftover grandchild of try 1 would
  still be writing while try 2 (or the next attempt admitted under the same lock)
  runs. On Linux the supervisor also gets ``PR_SET_PDEATHSIG=SIGTERM``: when the
  orchestrator dies, even by ``kill -9`` (which frees its lock at once), the
  supervisor SIGKILLs the whole group, so a resumed run never overlaps a live tree.
* **Bounded memory.** Output is drained by reader threads into fixed-size tails; a
  command that prints gigabytes costs a few kilobytes.
* **No secrets.** Tails, error messages and live output pass through :func:`redact`.

**Live output.** When an embedder watches command tries
(:mod:`dpone_core.executor.command_observer`; the Dagster adapter does), each try
also gets the observer's variables (a Dagster Pipes session of its own) and its
output lines, redacted, as they arrive, while the tails are kept as always. The CLI
sets no observer: a command's output stays in the tails, never on dpone's stdout.

**Dagster Pipes variables are not inherited.** ``DAGSTER_PIPES_CONTEXT`` and
``DAGSTER_PIPES_MESSAGES`` in dpone's own environment belong to dpone's own Pipes
session (Dagster launched ``dpone orchestrate run``, :mod:`dpone_dagster.pipes_report`); a
command that inherited them would write into that session and clash with dpone's
report, so they are dropped from the inherited environment. A manifest's ``env:``,
the request's ``env`` and an observer may still set them.

Known limit: a descendant that starts its own session or process group (``setsid``,
daemons, shells with job control) leaves the group and is not tracked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from dpone_core.executor.command_observer import CommandTry, Stream, command_observer
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.output_lines import OutputLines
from dpone_core.executor.results import ProcessResult
from dpone_core.manifest import CommandProcess
from dpone_core.redact import redact

__all__ = ["KILL_GRACE_SECONDS", "TAIL_CHARS", "run_command"]

#: Characters of stdout/stderr kept in the result (the end of the output).
TAIL_CHARS = 4096
#: Bytes buffered per stream; twice the tail so that a secret straddling the tail's
#: start is still whole when it is redacted.
_BUFFER_BYTES = 2 * TAIL_CHARS
_TRUNCATED = "...\n"
#: How long a process group gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 2.0
#: After the group is killed, how long to wait for the pipes to reach end-of-file.
_DRAIN_SECONDS = 5.0

_PR_SET_PDEATHSIG = 1
#: Dagster Pipes' bootstrap variables (``dagster_pipes`` spells them so; dpone_dagster.pipes_report,
#: which may import it, is not importable from here). See the module docstring.
_PIPES_VARIABLES = frozenset({"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"})


def _load_prctl() -> Callable[..., int] | None:
    """Resolve ``prctl`` in the parent: the forked child must not load libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None] | None:
    """``preexec_fn`` that ties the supervisor's life to the (thread that started it in the) parent.

    Linux delivers the death signal when the *thread* that forked exits; ``run_command``
    waits in that same thread, so the thread outlives the child unless the process dies.
    The signal is SIGTERM, which the supervisor turns into a SIGKILL of its whole group
    (a SIGKILL here would kill the supervisor alone and leave the command running).
    """
    prctl = _PRCTL
    if prctl is None:
        return None

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


_SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
_NOT_STARTED = 127


def _start_supervised(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` under the supervisor; the supervisor and the read end of its status pipe.

    The supervisor gets the environment through an unlinked file, not only as its own
    environment (see its docstring), and reports on the pipe whether the command
    could be executed (see :func:`_start_error`).
    """
    if not sys.executable:
        raise OSError(0, "no Python interpreter to run the supervisor (sys.executable)")
    entries = b"".join(os.fsencode(f"{name}={value}") + b"\0" for name, value in env.items())
    status_r, status_w = os.pipe()
    try:
        with tempfile.TemporaryFile() as env_file:
            env_file.write(entries)
            env_file.flush()
            env_file.seek(0)
            env_fd = env_file.fileno()
            supervisor = [sys.executable, "-I", "-S", _SUPERVISOR, str(os.getpid())]
            proc = subprocess.Popen(
                [*supervisor, str(status_w), str(env_fd), "--", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(status_w, env_fd),
                start_new_session=True,
                preexec_fn=_child_setup(os.getpid()),  # see _child_setup
            )
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    return proc, status_r


def _start_error(status_fd: int) -> OSError | None:
    """Wait for the supervisor's word: None once the command runs, else why it could not.

    Errors keep their errno, so "not found" and "not executable" are told apart as
    when the orchestrator executed the command itself.
    """
    with open(status_fd, "rb") as status_file:
        status = status_file.read()  # end-of-file comes right after the exec
    if status == b"ok":
        return None
    if status.startswith(b"error "):
        code = int(status.split()[1])
        return OSError(code, os.strerror(code))
    return OSError(0, "the supervisor ended before starting the command")


def _not_started(argv0: str, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return f"command not found: {argv0}"
    if isinstance(error, PermissionError):
        return f"command is not executable: {argv0}"
    return f"command could not start: {argv0}: {error.strerror or error}"


class _Tail:
    """Drain one pipe on a thread, keeping only the last ``_BUFFER_BYTES`` bytes.

    With ``lines``, every chunk is also cut into lines for a watching observer.
    """

    def __init__(self, stream: IO[bytes], name: str, lines: OutputLines | None = None) -> None:
        self._stream = stream
        self._lines = lines
        self._buffer = bytearray()
        self._dropped = 0
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        fd = self._stream.fileno()
        try:
            while chunk := os.read(fd, 65536):
                self._buffer += chunk
                excess = len(self._buffer) - _BUFFER_BYTES
                if excess > 0:
                    del self._buffer[:excess]
                    self._dropped += excess
                if self._lines is not None:
                    self._lines.feed(chunk)
        except (OSError, ValueError):
            pass  # the pipe was closed under us; keep what we have
        finally:
            if self._lines is not None:
                self._lines.close()
            with contextlib.suppress(OSError):
                self._stream.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        """The redacted tail, at most ``TAIL_CHARS`` characters."""
        text = redact(bytes(self._buffer).decode("utf-8", errors="replace"))
        if self._dropped == 0 and len(text) <= TAIL_CHARS:
            return text
        return _TRUNCATED + text[-(TAIL_CHARS - len(_TRUNCATED)) :]


def _tail(proc: subprocess.Popen[bytes], stream: Stream, watch: CommandTry | None) -> _Tail:
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    lines = None
    if watch is not None:
        output = watch.output
        lines = OutputLines(lambda text: output(stream, text))
    return _Tail(pipe, f"dpone-{stream}-{proc.pid}", lines)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_has_live_members(pgid: int) -> bool:
    """Whether any non-zombie process is still in the group.

    ``killpg(pgid, 0)`` also succeeds for the zombie leader we deliberately keep
    unreaped, so on Linux the group is read from ``/proc``.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, give it up to ``grace`` seconds, then SIGKILL whatever is left.

    The SIGKILL runs in ``finally`` so that a second interrupt during the grace period
    still leaves nothing behind.
    """
    try:
        if not _group_has_live_members(pgid):
            return
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_has_live_members(pgid):
            time.sleep(0.02)
    finally:
        _signal_group(pgid, signal.SIGKILL)


def _wait_exited(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait until the child exits, *without reaping it*; False on timeout.

    Leaving the leader a zombie keeps its pid (= the group id) reserved, so the
    ``killpg`` that follows can never hit an unrelated group that reused the number.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    if not hasattr(os, "waitid"):  # not Linux: fall back to Popen (reaps; tiny pid-reuse race)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    delay = 0.001
    while True:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            delay = min(delay, remaining)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _environment(
    process: CommandProcess, ctx: ProcessContext, extra: Mapping[str, str]
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _PIPES_VARIABLES}
    env.update(process.env)
    env.update(ctx.env)  # its secrets were registered when the run started (executor)
    env["DPONE_RUN_ID"] = ctx.run_id
    env["DPONE_ATTEMPT"] = str(ctx.try_number)
    env["DPONE_JOB_ATTEMPT"] = str(ctx.job_attempt)
    env["DPONE_PROCESS"] = ctx.process_name
    if ctx.window_start is not None:
        env["DPONE_PARTITION_START"] = ctx.window_start
    if ctx.window_end is not None:
        env["DPONE_PARTITION_END"] = ctx.window_end
    env.update(extra)
    return env


def _failed(started: float, error: str) -> ProcessResult:
    return ProcessResult(
        status="failed", duration_seconds=time.monotonic() - started, errors=[redact(error)]
    )


def _exit_error(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"command was killed by {name} (exit code {returncode})"
    return f"command exited with code {returncode}"


def run_command(process: CommandProcess, ctx: ProcessContext) -> ProcessResult:
    """Run one try of a command process (see the module docstring for the guarantees).

    The working directory is ``process.cwd`` relative to the manifest's directory, or
    the manifest's directory itself, so a manifest behaves the same from any scheduler.
    When an observer watches command tries, the try runs inside ``observer(ctx)``.
    """
    observer = command_observer()
    if observer is None:
        return _run_try(process, ctx, None)
    with observer(ctx) as watch:
        result = _run_try(process, ctx, watch)
        watch.ended(result)
    return result


def _run_try(
    process: CommandProcess, ctx: ProcessContext, watch: CommandTry | None
) -> ProcessResult:
    started = time.monotonic()
    argv = list(process.command)
    cwd = ctx.manifest_dir / process.cwd if process.cwd else ctx.manifest_dir
    if not Path(cwd).is_dir():
        return _failed(started, f"working directory not found: {cwd}")
    env = _environment(process, ctx, watch.env if watch is not None else {})
    try:
        proc, status_fd = _start_supervised(argv, Path(cwd), env)
    except OSError as exc:
        return _failed(started, f"command could not start: {argv[0]}: {exc.strerror or exc}")

    stdout = _tail(proc, "stdout", watch)
    stderr = _tail(proc, "stderr", watch)
    pgid = proc.pid  # start_new_session: the supervisor leads the command's group
    timed_out = False
    try:
        error = _start_error(status_fd)
        if error is not None:  # no command ran; the supervisor exits at once
            proc.wait()
            stdout.join(_DRAIN_SECONDS)
            stderr.join(_DRAIN_SECONDS)
            return _failed(started, _not_started(argv[0], error))
        exited = _wait_exited(proc, process.timeout_seconds)
        timed_out = not exited
        # Either way the try is over: nothing it started may outlive it. The leader is
        # still unreaped here, so the group id cannot have been reused.
        _kill_group(pgid, KILL_GRACE_SECONDS)
        returncode = proc.wait()
    except BaseException:
        try:
            _kill_group(pgid, KILL_GRACE_SECONDS)
        finally:
            proc.wait()
        raise
    stdout.join(_DRAIN_SECONDS)
    stderr.join(_DRAIN_SECONDS)

    errors: list[str] = []
    if timed_out:
        errors.append(
            f"command timed out after {process.timeout_seconds:g}s (process group killed)"
        )
    elif returncode != 0:
        errors.append(_exit_error(returncode))
    return ProcessResult(
        status="passed" if not errors else "failed",
        duration_seconds=time.monotonic() - started,
        errors=[redact(error) for error in errors],
        exit_code=returncode,
        stdout_tail=stdout.text(),
        stderr_tail=stderr.text(),
    )
