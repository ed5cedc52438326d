"""Deadlines of the whole process, kept in one heap and swept by one thread.

Every waiting call, publish and registration puts its deadline here instead of
waiting with a timeout of its own (under gevent a timed wait costs a ``Timeout``
object and a libev timer per call; with threads a timed futex wait), and so does each
connection's heartbeat check and each stream offered to ``accept_stream``. One
sweeping thread (a greenlet under gevent) serves every client of the process: it
sleeps until the earliest deadline, is woken only when an earlier one arrives, and
exits when nothing is due; a forked child starts afresh.

An entry is either a callback (``add``) or an object with an ``expire()`` method and
a ``settled`` attribute (``add_waiter``): a waiter answered before its deadline stays
in the heap, inert, until the heap is compacted (when it has doubled since the last
compaction), so answering a call costs nothing here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Any, Callable, Protocol

log = logging.getLogger("frontier.sdk")

_heappush = heapq.heappush
_monotonic = time.monotonic

#: fewest entries before the heap is compacted (dropping settled waiters)
COMPACT_MIN = 1024
#: shortest sleep of the sweeper (seconds): deadlines due within it are handled in one
#: wake-up (a call's ``Timeout`` comes at most this late; never early), so thousands of
#: connections' heartbeat checks cost at most 1/RESOLUTION wake-ups a second
RESOLUTION = 0.01

#: bumped in every forked child: per-process objects rebuild their locks on first use
#: there, after the child is set up (a gevent worker patches only after the fork, and
#: a lock made in the fork hook would be a real one blocking the whole hub)
GENERATION = [0]
#: guards those rebuilds (held briefly, never while blocking); made anew in every child
_build_lock = threading.Lock()


def _forked() -> None:
    global _build_lock
    _build_lock = threading.Lock()
    GENERATION[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class Expiring(Protocol):
    """What ``add_waiter`` takes: ``expire()`` runs at the deadline unless ``settled``."""

    settled: bool

    def expire(self) -> None: ...


class _Callback:
    """A plain callback as a heap entry; it runs on a thread of its own, so it may
    block (send a frame) without holding up the other deadlines."""

    __slots__ = ("fn",)
    settled = False

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def expire(self) -> None:
        threading.Thread(target=_run_callback, args=(self.fn,), name="frontier-deadline-callback", daemon=True).start()


def _run_callback(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.exception("a frontier deadline callback failed")


class Deadlines:
    """A heap of ``(deadline, seq, entry)`` swept by one daemon thread."""

    def __init__(self) -> None:
        self._generation = -1  # built on first use

    def _build(self) -> None:
        """(Re)make the locks and the heap in this process, on first use."""
        with _build_lock:
            if self._generation != GENERATION[0]:
                self._reset()
                self._generation = GENERATION[0]

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._running = False
        #: the deadline the sweeper sleeps until (inf: it sleeps on nothing)
        self._sleeping_until = float("inf")
        self._compact_at = COMPACT_MIN

    def add(self, deadline: float, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (on a thread of its own) once ``time.monotonic()`` reaches
        ``deadline``. It must tolerate running after its object is done."""
        self.add_waiter(deadline, _Callback(callback))

    def add_waiter(self, deadline: float, entry: Expiring) -> None:
        """Call ``entry.expire()`` at ``deadline`` unless ``entry.settled`` is true by
        then, on the sweeping thread: ``expire`` must be quick and never block."""
        if self._generation != GENERATION[0]:
            self._build()
        start = False
        with self._lock:
            heap = self._heap
            _heappush(heap, (deadline, next(self._seq), entry))
            if len(heap) >= self._compact_at:
                self._compact()
            if not self._running:
                self._running = start = True
                self._sleeping_until = deadline
            elif deadline < self._sleeping_until:
                self._sleeping_until = deadline
                self._wake.notify()
        if start:  # not under the lock: under gevent, starting a thread switches greenlets
            threading.Thread(target=self._sweep, name="frontier-deadlines", daemon=True).start()

    def _compact(self) -> None:
        """Under the lock: drop settled entries; next compaction at twice what is left."""
        self._heap = heap = [item for item in self._heap if not item[2].settled]
        heapq.heapify(heap)
        self._compact_at = max(COMPACT_MIN, 2 * len(heap))

    def __len__(self) -> int:
        return len(self._heap) if self._generation == GENERATION[0] else 0

    def _sweep(self) -> None:
        heappop = heapq.heappop
        while True:
            due = []
            with self._lock:
                while True:
                    heap = self._heap
                    if not heap:
                        self._running = False
                        self._sleeping_until = float("inf")
                        return
                    now = _monotonic()
                    while heap and heap[0][0] <= now:
                        entry = heappop(heap)[2]
                        if not entry.settled:
                            due.append(entry)
                    if due:
                        break
                    if heap:
                        self._sleeping_until = heap[0][0]
                        self._wake.wait(max(heap[0][0] - now, RESOLUTION))
                self._sleeping_until = heap[0][0] if heap else float("inf")
            for entry in due:
                try:
                    entry.expire()
                except Exception:  # one broken callback must not stop the others
                    log.exception("a frontier deadline callback failed")


#: the process's one instance (a forked child rebuilds it on first use: the parent's
#: sweeping thread does not exist there)
DEADLINES = Deadlines()
