"""A producer on its own thread, behind a bounded queue: reading overlaps writing.

:class:`Prefetch` runs an iterator (reading the source and formatting its rows)
on a worker thread while the caller's thread consumes the items (writing them
into ``COPY``). The caller's thread stays the one that owns the load
transaction and receives signals.

* **Bounded memory**: at most ``depth`` items wait in the queue, plus the one
  being produced and the one being consumed.
* **Errors propagate**: an exception of the producer is raised from the
  caller's iteration (with its traceback), after the items produced before it;
  nothing is swallowed, nothing hangs.
* **Early exit**: when the caller stops iterating (its own error, a signal
  turned into an exception, ``close()``), the worker is told to stop, finishes
  at most the item it is producing (one batch), closes the producer (its
  ``finally`` blocks run on the worker) and is joined before ``close()`` returns,
  so the source connection is idle again when the caller rolls back or closes it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Prefetch"]

T = TypeVar("T")

#: How often a blocked worker checks whether the consumer has gone (seconds).
_POLL = 0.05


class _Done:
    """End of the items (``error`` set: the producer raised)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate ``produce()`` on a worker thread; see the module docstring."""

    def __init__(self, produce: Callable[[], Iterator[T]], *, depth: int, name: str) -> None:
        self._queue: queue.Queue[T | _Done] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, args=(produce,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: T | _Done) -> bool:
        """Hand one item over; False when the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def _work(self, produce: Callable[[], Iterator[T]]) -> None:
        error: BaseException | None = None
        try:
            items = produce()
            try:
                for item in items:
                    if not self._put(item):
                        return
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        self._put(_Done(error))

    def __iter__(self) -> Iterator[T]:
        while not self._finished:
            item = self._queue.get()
            if isinstance(item, _Done):
                self._finished = True
                self._thread.join()
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the worker (after at most the item it is producing) and wait for it."""
        self._stop.set()  # a worker blocked on a full queue sees it within _POLL
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
