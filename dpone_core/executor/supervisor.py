"""The command's supervisor: kills the command's process group when the orchestrator dies.

:func:`dpone_core.executor.command.run_command` does not start a command itself; it
starts this file as a script (``python -I -S supervisor.py ...``), which leads the
command's process group and starts the command in that group. On Linux the
orchestrator gives it ``PR_SET_PDEATHSIG=SIGTERM``. When the orchestrator dies,
even by ``kill -9``, the kernel sends that SIGTERM and this process kills its whole
group with SIGKILL: the command and every descendant that stayed in the group
(background workers, nested shells), itself included.

Otherwise it is transparent. The command gets the orchestrator's stdin, stdout,
stderr and exactly the environment the orchestrator computed (read from a file
descriptor, because Python's start-up may coerce the C locale by adding
``LC_CTYPE`` to its own environment), default dispositions for the signals Python
itself ignores (SIGPIPE, SIGXFSZ), and no other file descriptors. Its exit status
is this process's: the same exit code, or death by the same signal. A signal that
reaches the supervisor while the orchestrator lives is one the orchestrator sent
to the whole group (a timeout, an interrupt): the command got it too, so the
supervisor ignores it and keeps waiting; the orchestrator's SIGKILL follows.

Protocol with the orchestrator: ``supervisor.py PARENT_PID STATUS_FD ENV_FD -- ARGV...``.
ENV_FD holds the environment as NUL-separated ``NAME=value`` entries. On STATUS_FD
the supervisor writes ``ok`` once the command runs, or ``error <errno>`` if it could
not be executed (then it exits 127 without a command ever running).

Standard library only, no package imports: it runs with ``-I -S`` (no site-packages,
no ``PYTHON*`` variables, not even this package on ``sys.path``) so it starts fast
and is not affected by the command's environment.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: Signals the supervisor intercepts; see the module docstring.
_WATCHED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
#: Signals Python ignores at start-up; the command gets the default, as from Popen.
_RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _read_environment(fd: int) -> dict[str, str]:
    env = {}
    for entry in _read_all(fd).split(b"\0"):
        if entry:
            name, _, value = entry.partition(b"=")
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


def _die_like(status: int) -> None:
    """Exit with the command's wait status: its exit code, or death by its signal."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            import resource

            _, hard = resource.getrlimit(resource.RLIMIT_CORE)
            resource.setrlimit(resource.RLIMIT_CORE, (0, hard))  # the command dumped already
        except (ImportError, OSError, ValueError):
            pass
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # only if the signal did not end us
    os._exit(os.waitstatus_to_exitcode(status))


def main(args: list[str]) -> None:
    parent, status_fd, env_fd = int(args[0]), int(args[1]), int(args[2])
    command = args[4:]  # args[3] is "--"
    me = os.getpid()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != me:  # the forked command before its exec: act as it would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        elif os.getppid() != parent:  # the orchestrator is gone
            os.killpg(0, signal.SIGKILL)

    for signum in _WATCHED:
        signal.signal(signum, on_signal)
    if os.getppid() != parent:  # it died before the handlers were in place
        os.killpg(0, signal.SIGKILL)

    env = _read_environment(env_fd)
    failed_r, failed_w = os.pipe()  # close-on-exec: end-of-file means the exec worked
    pid = os.fork()
    if pid == 0:  # the command; no threads exist here, so forking is safe
        try:
            os.close(failed_r)
            os.close(status_fd)
            for signum in (*_WATCHED, *_RESTORED):
                signal.signal(signum, signal.SIG_DFL)
            os.execvpe(command[0], command, env)
        except OSError as exc:
            os.write(failed_w, str(exc.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(failed_w)
    failure = _read_all(failed_r)
    os.write(status_fd, b"error " + failure if failure else b"ok")
    os.close(status_fd)
    _, status = os.waitpid(pid, 0)
    _die_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
