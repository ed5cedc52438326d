"""Callbacks run when their deadline passes, by one thread per process.

Used for the far side's stream accept deadline: a stream offered to the application
and not taken by ``accept_stream`` in time is refused. One sweeping thread (a
greenlet under gevent) serves every client of the process, instead of a
``threading.Timer`` thread per waiting item; it exits when nothing is due, and a
forked child starts afresh.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger("frontier.sdk")


class Deadlines:
    """A heap of ``(deadline, callback)`` swept by one daemon thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._running = False

    def add(self, deadline: float, callback: Callable[[], None]) -> None:
        """Run ``callback()`` once ``time.monotonic()`` reaches ``deadline``. The
        callback must be quick and must tolerate running after its object is done."""
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), callback))
            if not self._running:
                self._running = True
                threading.Thread(target=self._sweep, name="frontier-deadlines", daemon=True).start()
            else:
                self._cond.notify()

    def __len__(self) -> int:
        return len(self._heap)

    def _sweep(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._running = False
                        return
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        callback = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(delay)
            try:
                callback()
            except Exception:  # one broken callback must not stop the others
                log.exception("a frontier deadline callback failed")


#: the process's one instance
DEADLINES = Deadlines()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=DEADLINES._reset)  # the parent's thread does not exist here
