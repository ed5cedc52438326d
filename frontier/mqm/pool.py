"""A small greenlet-safe pool of broker connections, each used by one greenlet at a time.

For clients whose connection object must not be shared between greenlets (pika's
``BlockingConnection``, our NSQ connection): ``size`` connections allow ``size``
produces in flight at once, and a produce waiting for a free connection gives up at
its own deadline. A connection that saw an error or a cut-short operation is never
handed out again.
"""

from __future__ import annotations

import logging
from typing import Callable, Generic, TypeVar, overload

import gevent
import gevent.lock

from frontier.mqm.base import Deadline
from frontier.wire.errors import Timeout

C = TypeVar("C")
log = logging.getLogger("frontier.mqm")


class ConnectionPool(Generic[C]):
    """Up to ``size`` connections made by ``connect(deadline)``; idle ones reused LIFO.

    ``usable(conn)`` is asked before an idle connection is handed out again;
    ``dispose(conn)`` closes one (it runs in its own greenlet, bounded in time, so a
    stalled broker cannot hold up the caller).
    """

    #: seconds a dispose (a polite close) may take before it is abandoned
    dispose_timeout: float = 2.0

    def __init__(
        self,
        name: str,
        size: int,
        connect: Callable[[Deadline], C],
        usable: Callable[[C], bool],
        dispose: Callable[[C], None],
    ) -> None:
        self.name = name
        self.size = size
        self._connect = connect
        self._usable = usable
        self._dispose = dispose
        self._slots = gevent.lock.BoundedSemaphore(size)
        self._idle: list[C] = []
        self._closed = False

    @overload
    def acquire(self, deadline: Deadline) -> C: ...
    @overload
    def acquire(self, deadline: Deadline, wait: bool) -> C | None: ...

    def acquire(self, deadline: Deadline, wait: bool = True) -> C | None:
        """A connection for the caller alone; raises ``Timeout`` if none frees in time.
        Without ``wait``: None at once when every connection is busy."""
        if not self._slots.acquire(blocking=False):
            if not wait:
                return None
            if not self._slots.acquire(timeout=deadline.remaining()):
                raise Timeout(f"{self.name}: all {self.size} connections busy until the deadline")
        try:
            while self._idle:
                conn = self._idle.pop()
                if self._usable(conn):
                    return conn
                self.discard(conn)
            return self._connect(deadline)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: C, reusable: bool) -> None:
        """Give ``conn`` back; if not ``reusable`` (or the pool closed), close it."""
        try:
            if reusable and not self._closed:
                self._idle.append(conn)
            else:
                self.discard(conn)
        finally:
            self._slots.release()

    def discard(self, conn: C) -> None:
        """Close ``conn`` in the background, bounded by ``dispose_timeout``."""
        gevent.spawn(self._dispose_quietly, conn)

    def sweep(self, check: Callable[[C], None]) -> int:
        """Run ``check`` on each idle connection, dropping those where it raises.

        Used by health probes to service heartbeats of idle connections. Returns how
        many idle connections passed.
        """
        passed = 0
        for _ in range(len(self._idle)):
            if not self._idle or not self._slots.acquire(blocking=False):
                break
            conn = self._idle.pop(0)
            ok = False
            try:
                check(conn)
                ok = True
                passed += 1
            except Exception as exc:
                log.debug("%s: dropping an idle connection: %r", self.name, exc)
            finally:
                self.release(conn, ok)
        return passed

    def busy_count(self) -> int:
        """How many connections are handed out now."""
        return self.size - self._slots.counter

    def idle_count(self) -> int:
        """How many connections sit idle now."""
        return len(self._idle)

    def close(self) -> None:
        """Close idle connections now; busy ones are closed when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self.discard(conn)

    def _dispose_quietly(self, conn: C) -> None:
        try:
            with gevent.Timeout(self.dispose_timeout):
                self._dispose(conn)
        except (Exception, gevent.Timeout) as exc:
            log.debug("%s: closing a connection failed: %r", self.name, exc)
