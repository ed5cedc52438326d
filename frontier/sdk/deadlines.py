"""Deadlines of the whole process, kept in one place and swept by one thread.

Every waiting call, publish and registration puts its deadline here instead of
waiting with a timeout of its own (under gevent a timed wait costs a ``Timeout``
object and a libev timer per call; with threads a timed futex wait), and so does each
connection's heartbeat check and each stream offered to ``accept_stream``. One
sweeping thread (a greenlet under gevent) serves every client of the process: it
sleeps until the earliest deadline and is woken only when an earlier one arrives; a
forked child starts afresh.

Entries are kept in one insertion-ordered queue per timeout value (a client's calls
mostly share one timeout, so each queue is in deadline order and its head is the
next to expire): adding is an append, and an entry answered in time removes itself
(``cancel``) in O(1), so nothing lingers until its deadline (a heap would keep every
answered call alive, and let it age into the garbage collector's oldest generation).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Protocol

log = logging.getLogger("frontier.sdk")

_monotonic = time.monotonic
_INF = float("inf")

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
    """What ``add_waiter`` takes: ``expire()`` runs at the deadline unless the entry
    was cancelled first; ``timer`` is set by ``add_waiter`` (for ``cancel``)."""

    timer: Any

    def expire(self) -> None: ...


def cancel(entry: Expiring) -> None:
    """Take ``entry`` off its queue (it was answered in time); any thread, no lock."""
    timer = entry.timer
    if timer is not None:
        timer[0].pop(timer[1], None)


class _Callback:
    """A plain callback as an entry; it runs on a thread of its own, so it may
    block (send a frame) without holding up the other deadlines."""

    __slots__ = ("fn", "timer")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.timer = None

    def expire(self) -> None:
        threading.Thread(target=_run_callback, args=(self.fn,), name="frontier-deadline-callback", daemon=True).start()


def _run_callback(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.exception("a frontier deadline callback failed")


class Deadlines:
    """Queues of ``key -> (deadline, entry)`` by timeout, swept by one daemon thread."""

    def __init__(self) -> None:
        self._generation = -1  # built on first use

    def _build(self) -> None:
        """(Re)make the locks and the queues in this process, on first use, and start
        the sweeper (it runs for the life of the process, idle without entries)."""
        with _build_lock:
            if self._generation == GENERATION[0]:
                return
            self._lock = threading.Lock()
            self._wake = threading.Condition(self._lock)
            self._queues: dict[float, OrderedDict[int, tuple[float, Any]]] = {}
            self._seq = itertools.count()
            #: the deadline the sweeper sleeps until (inf: it sleeps on nothing)
            self._sleeping_until = _INF
            self._generation = GENERATION[0]
        threading.Thread(target=self._sweep, name="frontier-deadlines", daemon=True).start()

    def add(self, timeout: float, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (on a thread of its own) ``timeout`` seconds from now. It
        must tolerate running after its object is done."""
        self.add_waiter(timeout, _Callback(callback))

    def add_waiter(self, timeout: float, entry: Expiring, now: float | None = None) -> None:
        """Call ``entry.expire()`` ``timeout`` seconds after ``now`` (default: now) unless
        ``cancel(entry)`` came first; it runs on the sweeping thread, so ``expire``
        must be quick and never block."""
        if self._generation != GENERATION[0]:
            self._build()
        deadline = (_monotonic() if now is None else now) + timeout
        with self._lock:
            queue = self._queues.get(timeout)
            if queue is None:
                queue = self._queues[timeout] = OrderedDict()
            key = next(self._seq)
            queue[key] = (deadline, entry)
            entry.timer = (queue, key)
            if deadline < self._sleeping_until:
                self._sleeping_until = deadline
                self._wake.notify()

    def __len__(self) -> int:
        if self._generation != GENERATION[0]:
            return 0
        return sum(len(q) for q in list(self._queues.values()))

    def _due(self, now: float) -> tuple[list[Any], float]:
        """Under the lock: take every entry due by ``now``; the next deadline after."""
        due = []
        nearest = _INF
        for timeout, queue in list(self._queues.items()):
            while True:
                try:
                    key, (deadline, entry) = next(iter(queue.items()))
                except StopIteration:
                    del self._queues[timeout]  # empty: made again when needed
                    break
                except RuntimeError:  # changed while looked at (an answer removed it): look again
                    continue
                if deadline > now:
                    nearest = min(nearest, deadline)
                    break
                if queue.pop(key, None) is not None:
                    due.append(entry)
        return due, nearest

    def _sweep(self) -> None:
        generation = self._generation
        while generation == GENERATION[0]:
            with self._lock:
                while True:
                    now = _monotonic()
                    due, nearest = self._due(now)
                    self._sleeping_until = nearest
                    if due:
                        break
                    self._wake.wait(None if nearest == _INF else max(nearest - now, RESOLUTION))
            for entry in due:
                try:
                    entry.expire()
                except Exception:  # one broken callback must not stop the others
                    log.exception("a frontier deadline callback failed")


#: the process's one instance (a forked child rebuilds it on first use: the parent's
#: sweeping thread does not exist there)
DEADLINES = Deadlines()
