"""Watch the tries of command processes: extra environment, live output, the try's result.

An embedder sets a :data:`CommandObserver` for the dynamic extent of a run with
:func:`observing_commands`. The executor runs in the caller's thread (the
orchestrator calls it synchronously), so every try of a command process started
inside that extent calls the observer, and only those::

    with observer(ctx) as watch:           # before the command starts
        env |= watch.env                   # e.g. this try's Dagster Pipes variables
        watch.output("stdout", text)       # live, from the reader threads, redacted
        watch.ended(result)                # the try's result; its process group is gone

The Dagster adapter uses it to give each try its own Pipes session and to tee the
output into the step's compute logs (:mod:`dpone_dagster.command_pipes`). Without
an observer -- the CLI -- nothing changes: a command's output is kept only in the
result's tails, and dpone's stdout carries only the report.

``output`` receives whole lines, redacted, each ending with ``\\n``: the lines a
read from the command's pipe completed, in one call (a secret spread over several
lines is masked whole when it arrives in one read, else line by line; see
:mod:`dpone_core.executor.output_lines`). A line longer than
:data:`LINE_BYTES` is passed on in pieces, each given a ``\\n``, and an
unterminated last line at the end of the stream gets one too. An ``output`` or
``ended`` that raises does not stop the command: output is still drained into the
tails, and the observer gets no more output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Literal, Protocol

from dpone_core.executor.context import ProcessContext
from dpone_core.executor.results import ProcessResult

__all__ = [
    "LINE_BYTES",
    "CommandObserver",
    "CommandTry",
    "Stream",
    "command_observer",
    "observing_commands",
]

#: The longest piece of one line passed to ``CommandTry.output`` at once.
LINE_BYTES = 64 * 1024

Stream = Literal["stdout", "stderr"]


class CommandTry(Protocol):
    """What an observer makes of one try of a command."""

    @property
    def env(self) -> Mapping[str, str]:
        """Variables added to the command's environment for this try (they win)."""
        ...

    def output(self, stream: Stream, text: str) -> None:
        """Whole lines the command wrote, redacted; called from reader threads."""
        ...

    def ended(self, result: ProcessResult) -> None:
        """The try's result, after its process group was killed and its output drained."""
        ...


#: Called once per try with the try's context; the context manager spans the try.
CommandObserver = Callable[[ProcessContext], AbstractContextManager[CommandTry]]

_OBSERVER: ContextVar[CommandObserver | None] = ContextVar("dpone_command_observer", default=None)


@contextmanager
def observing_commands(observer: CommandObserver) -> Iterator[None]:
    """Let ``observer`` watch every command try run in this context (and thread)."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def command_observer() -> CommandObserver | None:
    """The observer set by the innermost :func:`observing_commands`, if any."""
    return _OBSERVER.get()
