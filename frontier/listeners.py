"""Accept loops that survive descriptor exhaustion and cap their connections.

Every listening port of a frontier or Frontlas process (the edge and service
listeners, the control plane, the Frontlas ports) is a gevent ``StreamServer`` with
:class:`GuardedAccept` mixed in:

- When ``accept`` fails because the process (or the system) is out of descriptors
  or memory (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``), accepting pauses for
  :attr:`GuardedAccept.exhausted_pause` seconds and resumes by itself; one line is
  logged per :attr:`GuardedAccept.log_every` seconds, never a traceback. gevent's own
  loop would log a traceback per failed accept and back off up to a second.
- With ``max_open`` set, a connection past the cap is closed at accept (with a reset,
  so no ``TIME_WAIT``) instead of being held while it waits: the descriptors a port
  can take are bounded, and a caller sees a fast refusal, not a hang.

Their HTTP ports (the control plane, Frontlas' cluster API, the observability
listener) serve requests with :class:`DeadlineWSGIHandler`.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from typing import Any, Callable, Optional

import gevent
from gevent.pywsgi import WSGIHandler
from gevent.server import StreamServer

log = logging.getLogger("frontier.listeners")

#: accept errors that mean "out of resources now", not "this listener is broken"
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_LINGER_NOW = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close with RST, no TIME_WAIT


def close_now(sock: socket.socket) -> None:
    """Close an accepted socket at once with a reset (a refusal at accept)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
    except OSError:
        pass
    sock.close()


class GuardedAccept:
    """Mix in before ``StreamServer`` (or a subclass such as ``WSGIServer``)."""

    #: seconds accepting pauses after the process ran out of descriptors
    exhausted_pause = 0.25
    #: seconds between two log lines about running out of descriptors
    log_every = 10.0
    #: connections open at once on this port; 0: no cap
    max_open = 0
    #: what the port is called in logs
    port_name = "listener"
    #: called with a reason each time a connection is refused at accept (a metric, say)
    on_refused: Callable[[str], Any] | None = None

    _open = 0
    _exhausted_logged = 0.0
    _exhausted_count = 0
    _resume_timer: Any = None

    @property
    def open_connections(self) -> int:
        """Connections accepted on this port and not yet closed."""
        return self._open

    def do_read(self) -> Any:
        try:
            return super().do_read()  # type: ignore[misc]
        except OSError as exc:
            if exc.errno not in EXHAUSTED:
                raise
            self._exhausted(exc)
            return None

    def _exhausted(self, exc: OSError) -> None:
        self._exhausted_count += 1
        now = time.monotonic()
        if now - self._exhausted_logged >= self.log_every:
            log.error("%s: cannot accept (%s): pausing accepts for %.2fs; %d such failures since the last report",
                      self.port_name, errno.errorcode.get(exc.errno, exc.errno), self.exhausted_pause,
                      self._exhausted_count)
            self._exhausted_logged = now
            self._exhausted_count = 0
        if self.on_refused is not None:
            self.on_refused("exhausted")
        self.stop_accepting()  # type: ignore[attr-defined]
        if self._resume_timer is not None:
            self._resume_timer.close()
        self._resume_timer = self.loop.timer(self.exhausted_pause)  # type: ignore[attr-defined]
        self._resume_timer.start(self._resume)

    def _resume(self) -> None:
        self._resume_timer = None
        if self.started:  # type: ignore[attr-defined]
            self.start_accepting()  # type: ignore[attr-defined]

    def do_handle(self, sock: socket.socket, *args: Any) -> None:
        if self.max_open and self._open >= self.max_open:
            if self.on_refused is not None:
                self.on_refused("max_connections")
            close_now(sock)
            return
        self._open += 1
        super().do_handle(sock, *args)  # type: ignore[misc]

    def do_close(self, sock: socket.socket, *args: Any) -> None:
        self._open -= 1
        super().do_close(sock, *args)  # type: ignore[misc]

    def close(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.close()
            self._resume_timer = None
        super().close()  # type: ignore[misc]


class GuardedStreamServer(GuardedAccept, StreamServer):
    """gevent's ``StreamServer`` with :class:`GuardedAccept`."""


class DeadlineWSGIHandler(WSGIHandler):
    """gevent's WSGI handler with deadlines against slow clients (slowloris): a request
    head (request line and headers) must arrive whole within the server's
    ``header_timeout`` (for the first request counted from the connection's start, on
    a keep-alive connection from the next request's first byte); every read and write,
    the wait for that first byte included, gives up after ``idle_timeout`` seconds
    without progress. A late head closes the connection."""

    _requests = 0
    _head_timer: Optional[gevent.Timeout] = None

    def handle(self) -> None:
        self.socket.settimeout(self.server.idle_timeout)
        super().handle()

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        finally:
            self._end_head()

    def read_requestline(self) -> str:
        if self._requests:
            self.rfile.peek(1)  # keep-alive: idle (bounded by the socket timeout) until it starts
        self._requests += 1
        timer = self._head_timer = gevent.Timeout(self.server.header_timeout)
        timer.start()
        try:
            return super().read_requestline()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            return ""  # ends the connection

    def read_request(self, raw_requestline: str) -> Any:
        timer = self._head_timer
        try:
            return super().read_request(raw_requestline)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise ValueError("the request head did not arrive in time") from None
        finally:
            self._end_head()

    def _end_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.close()
            self._head_timer = None
