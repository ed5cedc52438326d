"""The gateway side of one connection: a fair reader loop and a non-blocking writer.

One greenlet (the listener's handler) reads the socket and feeds the sans-io
:class:`~frontier.wire.Connection`; every event goes to a :class:`Dispatcher` (the
exchange). The reader takes turns: after a bounded batch (:attr:`Session.turn_frames`
frames or :attr:`Session.turn_bytes` bytes) it yields to the hub, so a connection
that floods shares the loop round-robin with everyone else, and with the flushes,
timers and the heartbeat reaper. At the end of a turn the connection's frame and
byte rates are charged (:class:`~frontier.sessions.limits.ConnectionRate`): over its
rate the reader pauses (TCP slows the peer, nothing is lost), and a connection still
over it after the grace period is closed with ``RATE_LIMITED``.

Writes never block the caller: :meth:`Session.send` appends the frame to one
outgoing byte buffer, and a callback at the end of the event-loop iteration sends
everything queued for this peer in that iteration with one non-blocking ``send``
(200 edges calling one service cost the service connection one syscall, not 200).
Only when the kernel buffer is full does a writer greenlet take over and wait. The
buffer is one ``bytearray``, so what a peer that stops reading costs in memory is
what is counted: past ``max_out_bytes`` it is disconnected (slow consumer).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, ClassVar, Protocol, cast

import gevent
from gevent import socket

from frontier import metrics
from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.codec import event_of
from frontier.wire.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from frontier.wire.events import FRAME_TYPES, Event, Hello, PeerClosed

log = logging.getLogger("frontier.session")

class _Closing(Exception):
    """Thrown into a session's reader greenlet to end it when another greenlet closed it."""


class _HelloDeadlines:
    """Connections that still owe their ``Hello``, and by when. One sweeper greenlet,
    alive only while some are pending, closes the late ones: a ``gevent.Timeout`` per
    connection cost about a tenth of a connect's CPU."""

    def __init__(self) -> None:
        self._due: dict["Session", float] = {}
        self._sweeper: gevent.Greenlet | None = None
        self._tick = 1.0  #: seconds between sweeps: a quarter of the shortest deadline seen, 1 s at most

    def add(self, session: "Session", timeout: float) -> None:
        """``session`` must say hello within ``timeout`` seconds."""
        self._due[session] = time.monotonic() + timeout
        self._tick = min(self._tick, max(timeout / 4, 0.01))
        if self._sweeper is None:
            self._sweeper = gevent.spawn(self._sweep)

    def discard(self, session: "Session") -> None:
        """``session`` said hello (or is gone)."""
        self._due.pop(session, None)

    def _sweep(self) -> None:
        try:
            while self._due:
                gevent.sleep(self._tick)
                now = time.monotonic()
                for session, deadline in list(self._due.items()):
                    if now >= deadline:
                        del self._due[session]
                        session.close(ErrorCode.TIMEOUT, "no handshake within the deadline", log_level=logging.INFO)
        finally:
            self._sweeper = None


_HELLO_DEADLINES = _HelloDeadlines()

ROLE_EDGE = "edge"
ROLE_SERVICE = "service"
_RECV_SIZE = 1 << 16
#: a sleep this short still ends the turn in the hub's next loop iteration, after it
#: polled for I/O (``sleep(0)`` may resume a greenlet before the loop polls again)
_TURN_YIELD = 1e-6


class Dispatcher(Protocol):
    """What a session hands its events to (the exchange)."""

    def admit(self, session: "Session", hello: Hello) -> None:
        """Run the handshake; raise a FrontierError to refuse."""

    def dispatch(self, session: "Session", event: Event | list) -> None:
        """Handle one event after the handshake (a lean field list: see ``Connection.next_frame``)."""

    def closed(self, session: "Session") -> None:
        """The connection is gone: clean up everything that refers to it."""


class Session:
    """One client connection as the gateway sees it (an edge or a service)."""

    __slots__ = (
        "sock", "conn", "role", "addr", "ip", "id", "name", "meta", "rpcs", "topics", "hooks",
        "created_at", "last_rx", "pending", "calls_out", "streams", "held", "closed", "online",
        "_out", "_sending", "_writer", "_max_out", "_flush_pending", "_raw", "_reader", "expires", "rate",
        "lean", "is_edge",
        "__weakref__",
    )

    #: frames the reader dispatches before it ends its turn (yields to the hub)
    turn_frames: ClassVar[int] = 64
    #: bytes the reader takes in before it ends its turn
    turn_bytes: ClassVar[int] = 256 * 1024

    def __init__(self, sock: socket.socket, addr: tuple[str, int], role: str, *, max_frame_size: int, max_out_bytes: int,
                 rate: Any = None, lean: bool = False) -> None:
        self.sock = sock
        #: calls, publishes and their answers reach the dispatcher as field lists and
        #: go out with no event object (``Connection.next_frame``/``send_fields``), for
        #: a dispatcher that takes them (the exchange); False: events throughout, the
        #: reference path the lean one must match byte for byte
        self.lean = lean
        # what the gateway sends is built from frames it already checked and its own ids
        self.conn = Connection(Side.GATEWAY, max_frame_size=max_frame_size, check_sends=False)
        self.role = role
        #: True for an edge connection, False for a service
        self.is_edge = role == ROLE_EDGE
        self.ip = addr[0]
        self.addr = f"{addr[0]}:{addr[1]}"
        self.id = 0
        self.name = ""
        self.meta = b""
        self.rpcs: tuple[str, ...] | set[str] = ()
        self.topics: tuple[str, ...] | set[str] = ()
        self.hooks: tuple[str, ...] = ()
        self.created_at = time.time()
        self.last_rx = time.monotonic()
        #: requests/publishes the gateway sent to this peer, by the gateway's id
        self.pending: dict[int, Any] = {}
        #: requests/publishes this peer sent that are forwarded elsewhere, by the peer's id
        self.calls_out: dict[int, Any] = {}
        #: our stream id -> (peer session or gateway stream, peer's stream id)
        self.streams: dict[int, tuple[Any, int]] = {}
        #: events (or lean field tuples) held while an edge's online hooks run (None: send at once)
        self.held: list[Event | tuple] | None = None
        self.closed = False
        self.online = False  #: admitted and visible in a registry
        self._out = bytearray()  #: frames queued and not yet handed to the kernel
        self._sending = 0  #: bytes the writer greenlet holds while it waits in ``sendall``
        self._writer: gevent.Greenlet | None = None
        self._max_out = max_out_bytes
        self._flush_pending = False
        self._reader: gevent.Greenlet | None = None
        #: unix time the connection's credentials expire (0: never); see the gateway's reaper
        self.expires = 0
        #: this connection's frame/byte rate limiter (a ``ConnectionRate``), or None
        self.rate = rate
        #: the OS socket under gevent's wrapper, for non-blocking sends from the hub
        #: (None for TLS, whose writes must go through the SSL object)
        # (exactly gevent's plain socket: its TLS socket is a subclass, and asking any
        # socket for a missing attribute costs an exception on every connect)
        self._raw: Any = sock._sock if type(sock) is socket.socket else None

    def __repr__(self) -> str:
        return f"<{self.role} {self.id} {self.addr}>"

    # -- reading ----------------------------------------------------------------------

    def run(self, dispatcher: Dispatcher, handshake_timeout: float) -> None:
        """Read and dispatch until the connection ends; always calls ``dispatcher.closed``.

        The reader owns the socket's end: when it returns, what was queued went out
        (or the deadline passed) and the peer saw a clean half-close."""
        self._reader = gevent.getcurrent()
        try:
            _HELLO_DEADLINES.add(self, handshake_timeout)
            try:
                hello = self._read_hello()
            finally:
                _HELLO_DEADLINES.discard(self)
            if hello is None:  # hung up before saying hello (a port probe, say)
                return
            dispatcher.admit(self, hello)
            if not self.closed:
                self._read_loop(dispatcher.dispatch)
        except RemoteProtocolError as exc:
            metrics.FRAMES_REJECTED.labels(reason=exc.code.name.lower()).inc()
            self.close(exc.code, str(exc), log_level=logging.WARNING)
        except LocalProtocolError as exc:
            # something this peer sent could not be relayed and no handler turned it into
            # an answer: the fault stays with this connection, and is not a gateway crash
            metrics.FRAMES_REJECTED.labels(reason="unrelayable").inc()
            self.close(ErrorCode.PROTOCOL_ERROR, f"cannot relay what it sent: {exc}", log_level=logging.WARNING)
        except OSError as exc:
            self.close(ErrorCode.CONNECTION_CLOSED, f"socket error: {exc}", log_level=logging.DEBUG)
        except _Closing:
            pass
        finally:
            self.close(ErrorCode.CONNECTION_CLOSED, "", log_level=logging.NOTSET)
            try:
                dispatcher.closed(self)
            finally:
                self._linger()

    def _read_hello(self) -> Hello | None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                data = self.sock.recv(_RECV_SIZE)
                conn.receive_data(data)
                continue
            if type(event) is PeerClosed:
                return None
            return cast(Hello, event)  # the machine only lets a Hello through first

    def _read_loop(self, dispatch: Callable[["Session", Any], None]) -> None:
        conn = self.conn
        recv = self.sock.recv
        next_event = conn.next_frame if self.lean else conn.next_event
        monotonic = time.monotonic
        turn_frames, turn_bytes = self.turn_frames, self.turn_bytes
        frames = nbytes = 0
        drained = False  # the last read emptied the kernel's buffer (it was short)
        while not self.closed:
            event = next_event()
            if event is NEED_DATA:
                if nbytes >= turn_bytes:
                    self._end_turn(frames, nbytes)
                    frames = nbytes = 0
                    continue
                data = self._recv_ready() if drained and self._raw is not None else recv(_RECV_SIZE)
                drained = len(data) < _RECV_SIZE
                self.last_rx = monotonic()
                conn.receive_data(data)
                nbytes += len(data)
                continue
            if type(event) is PeerClosed:
                return
            dispatch(self, event)  # events, or field lists (lists are never PeerClosed)
            frames += 1
            if frames >= turn_frames:
                self._end_turn(frames, nbytes)
                frames = nbytes = 0

    def _recv_ready(self) -> bytes:
        """Read once the socket is readable. After a short read the kernel's buffer was
        empty, so a read at once would almost always fail; waiting first saves that
        syscall and the exception gevent's ``recv`` raises and catches for it (a
        connection with one frame in flight, the usual edge, pays it on every frame).
        Uses gevent's own read watcher of the socket (its ``recv`` waits on the same)."""
        sock = self.sock
        sock._wait(sock._read_event)
        try:
            return self._raw.recv(_RECV_SIZE)
        except BlockingIOError:  # readable, then not (another reader cannot exist): be safe
            return sock.recv(_RECV_SIZE)

    def _end_turn(self, frames: int, nbytes: int) -> None:
        """Charge the turn to the connection's rates, then give the hub its turn: a
        pause while over the rate, else the shortest sleep that lets the loop poll."""
        rate = self.rate
        if rate is not None:
            now = time.monotonic()
            pause = rate.charge(frames, nbytes, now)
            if pause:
                if rate.violated(now):
                    metrics.RATE_LIMITED.labels(role=self.role, action="closed").inc()
                    self.close(ErrorCode.RATE_LIMITED, f"over the connection's frame or byte rate for {rate.grace:g}s",
                               log_level=logging.WARNING)
                    return
                metrics.RATE_LIMITED.labels(role=self.role, action="throttled").inc()
                gevent.sleep(pause)
                return
        gevent.sleep(_TURN_YIELD)

    # -- writing ------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Queue one event for this peer; never blocks. Dropped if the session closed.
        Raises ``LocalProtocolError`` if the event cannot be encoded within the frame
        limit (see :meth:`relay` for frames built from what another peer sent)."""
        if self.closed:
            return
        if self.held is not None:
            self.held.append(event)
            return
        frame = self.conn.send(event)
        if frame:
            self._queue(frame)

    def relay(self, event: Event) -> bool:
        """:meth:`send` an event built from another peer's frame; False (nothing sent,
        counted) if it cannot be encoded, so the caller answers with a typed error."""
        try:
            self.send(event)
            return True
        except LocalProtocolError:
            metrics.RELAY_REFUSED.labels(kind=type(event).__name__).inc()
            return False

    def relay_fields(self, fields: tuple) -> bool:
        """:meth:`relay` a Request, Response, Publish or Ack given as its field tuple
        ``(TYPE, field, ...)``: encoded with no event object on the way (unless
        :attr:`lean` is off)."""
        if self.closed:
            return True
        if self.held is not None:
            self.held.append(fields)
            return True
        try:
            frame = self.conn.send_fields(fields) if self.lean else self.conn.send(event_of(fields))
        except LocalProtocolError:
            metrics.RELAY_REFUSED.labels(kind=FRAME_TYPES[fields[0]].__name__).inc()
            return False
        if frame:
            self._queue(frame)
        return True

    def release_held(self, first: Event) -> None:
        """Send ``first`` (the Welcome), then everything held during admission (one
        that cannot be encoded is dropped: its sender's deadline answers it)."""
        held, self.held = self.held or [], None
        self.send(first)
        for item in held:
            if isinstance(item, tuple):
                self.relay_fields(item)
            else:
                self.relay(item)

    def _queue(self, frame: bytes) -> None:
        out = self._out
        out += frame
        if len(out) + self._sending > self._max_out:
            self.close(ErrorCode.BUFFER_FULL, f"slow consumer: more than {self._max_out} bytes unsent", flush=False)
            return
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_pending and self._writer is None:
            self._flush_pending = True
            gevent.get_hub().loop.run_callback(self._flush)

    def _flush(self) -> None:
        """Runs in the hub: send what is queued without blocking; hand any rest to a writer."""
        self._flush_pending = False
        out = self._out
        if self._writer is not None or not out:
            return
        sent = 0
        if self._raw is not None:
            try:
                sent = self._raw.send(out)
            except BlockingIOError:
                pass
            except OSError as exc:
                self.close(ErrorCode.CONNECTION_CLOSED, f"write failed: {exc}", log_level=logging.DEBUG, flush=False)
                return
        if sent == len(out):
            out.clear()
            return
        if sent:
            del out[:sent]
        self._writer = gevent.spawn(self._drain)

    def _drain(self) -> None:
        """Writer greenlet: block in ``sendall`` until everything queued is out. It takes
        the whole buffer each time, so frames queued meanwhile go into a fresh one."""
        try:
            while self._out:
                data, self._out = self._out, bytearray()
                self._sending = len(data)
                self.sock.sendall(data)
                self._sending = 0
        except OSError as exc:
            self._out.clear()
            self._sending = 0
            self.close(ErrorCode.CONNECTION_CLOSED, f"write failed: {exc}", log_level=logging.DEBUG, flush=False)
        finally:
            self._writer = None

    # -- closing --------------------------------------------------------------------------

    def close(self, code: int, message: str, *, log_level: int = logging.INFO, flush: bool = True,
              retry_after: float | None = None) -> None:
        """Close once: queue the closing frame (Refuse or GoAway, telling the client to
        come back after ``retry_after`` seconds when given) if any and end the reader,
        which flushes (unless ``flush`` is False) and shuts the socket. Safe to call
        from any greenlet, any number of times."""
        if self.closed:
            return
        self.closed = True
        if log_level and message:
            log.log(log_level, "closing %r: %s (%s)", self, message, ErrorCode(code).name)
        self.held = None
        retry_ms = None if retry_after is None else max(0, round(retry_after * 1000))
        last = self.conn.close_frame(code, message, retry_ms) if code != ErrorCode.CONNECTION_CLOSED else b""
        if flush:
            if last:
                self._out += last
            if self._out:
                self._schedule_flush()
        else:
            self._out.clear()
            if self._writer is not None:
                self._writer.kill(block=False)
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent() and not reader.dead:
            reader.kill(_Closing, block=False)

    #: seconds a closing connection gets to flush what is queued and say goodbye
    goodbye_timeout: ClassVar[float] = 1.0
    #: bytes read (and dropped) from a closing peer while waiting for its close; a peer
    #: that sends more is cut off without waiting
    goodbye_drain_bytes: ClassVar[int] = 1 << 20

    def _linger(self) -> None:
        """Last act of the reader: let queued frames go out (bounded), half-close, and
        drain what the peer still sends until it closes too, so a reset does not
        destroy the goodbye frame before the peer read it. The server then closes."""
        deadline = time.monotonic() + self.goodbye_timeout
        while True:
            try:
                self._linger_until(deadline)
                return
            except _Closing:
                # a close() from another greenlet raced with this reader's own ending
                # (its interrupt arrived here rather than in recv): keep saying goodbye
                continue

    def _linger_until(self, deadline: float) -> None:
        while (self._out or self._flush_pending or self._writer is not None) and time.monotonic() < deadline:
            gevent.sleep(0.002)
        if self._writer is not None:  # the peer is not reading: no clean goodbye
            self._writer.kill(block=False)
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
            drained = 0
            with gevent.Timeout(max(deadline - time.monotonic(), 0.05), False):
                # bounded, and yielding: a peer still flooding must not hold the loop
                while drained < self.goodbye_drain_bytes:
                    data = self.sock.recv(_RECV_SIZE)
                    if not data:
                        break
                    drained += len(data)
                    gevent.sleep(_TURN_YIELD)
        except OSError:
            pass
