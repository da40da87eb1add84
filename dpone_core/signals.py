"""Turn a scheduler's SIGTERM (and SIGINT) into an exception in the main thread.

The orchestrator then ends the attempt as ``failed`` with the reason, kills
the command's process group and releases the key. After the first signal the
handlers ignore further ones so that this bookkeeping cannot be cut short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class TerminationSignal(BaseException):
    """Raised in the main thread when the process receives SIGTERM or SIGINT."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}")


_HANDLED = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _HANDLED}

    def _raise(signum: int, frame: FrameType | None) -> None:
        for other in _HANDLED:
            signal.signal(other, signal.SIG_IGN)
        raise TerminationSignal(signum)

    for signum in _HANDLED:
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
