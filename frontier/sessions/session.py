"""The gateway side of one connection: its state, and a writer that never blocks.

What reads the connection is :func:`frontier.sessions.reader.serve`, in the
connection's own greenlet; this class holds what the exchange routes with (ids,
registrations, pending calls, streams) and the outgoing side.

Writes never block the caller: :meth:`Session.send` appends the frame to one
outgoing byte buffer, and a callback at the end of the event-loop iteration sends
everything queued for this peer in that iteration with one non-blocking ``send``
(200 edges calling one service cost the service connection one syscall, not 200).
Only when the kernel buffer is full does a writer greenlet take over and wait. The
buffer is one ``bytearray``, so what a peer that stops reading costs in memory is
what is counted: past ``max_out_bytes`` it is disconnected (slow consumer).
"""

from __future__ import annotations

import _socket
import logging
import time
from typing import Any, Callable, ClassVar, Final

import gevent
from gevent import socket

from frontier import metrics
from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.codec import event_of
from frontier.wire.errors import ErrorCode, LocalProtocolError
from frontier.wire.events import FRAME_TYPES, Event, PeerClosed, WireId

log = logging.getLogger("frontier.session")
_time: Final = time.time
_monotonic: Final = time.monotonic
_get_hub: Final = gevent.get_hub
_PlainSocket: Final = socket.socket  #: gevent's socket without TLS
_GATEWAY: Final = Side.GATEWAY
# unbound, so compiled code calls them without looking the method up on each flush
_send_now: Final = _socket.socket.send
_clear: Final = bytearray.clear


class Closing(Exception):
    """Thrown into a session's reader greenlet to end it when another greenlet closed it."""


ROLE_EDGE = "edge"
ROLE_SERVICE = "service"
#: bytes a reader asks the socket for at once
RECV_SIZE: Final = 1 << 16


class Session:
    """One client connection as the gateway sees it (an edge or a service)."""

    __slots__ = (
        "sock", "conn", "role", "addr", "ip", "id", "name", "meta", "rpcs", "topics", "hooks",
        "created_at", "last_rx", "pending", "calls_out", "streams", "held", "closed", "online",
        "_out", "_sending", "_writer", "_max_out", "_flush_pending", "_loop", "raw", "reader", "expires", "rate",
        "lean", "is_edge",
        "__weakref__",
    )

    #: frames the reader dispatches before it ends its turn (yields to the hub)
    turn_frames: ClassVar[int] = 64
    #: bytes the reader takes in before it ends its turn
    turn_bytes: ClassVar[int] = 256 * 1024
    #: seconds a closing connection gets to flush what is queued and say goodbye
    goodbye_timeout: ClassVar[float] = 1.0
    #: bytes read (and dropped) from a closing peer while waiting for its close; a peer
    #: that sends more is cut off without waiting
    goodbye_drain_bytes: ClassVar[int] = 1 << 20

    def __init__(self, sock: socket.socket, addr: tuple[str, int], role: str, *, max_frame_size: int, max_out_bytes: int,
                 rate: Any = None, lean: bool = False) -> None:
        self.sock = sock
        #: calls, publishes and their answers reach the dispatcher as field lists and
        #: go out with no event object (``Connection.next_frame``/``send_fields``), for
        #: a dispatcher that takes them (the exchange); False: events throughout, the
        #: reference path the lean one must match byte for byte
        self.lean = lean
        # what the gateway sends is built from frames it already checked and its own ids
        self.conn = Connection(_GATEWAY, max_frame_size=max_frame_size, check_sends=False)
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
        self.created_at = _time()
        self.last_rx = _monotonic()
        #: requests/publishes the gateway sent to this peer, by the gateway's id
        self.pending: dict[WireId, Any] = {}
        #: requests/publishes this peer sent that are forwarded elsewhere, by the peer's id
        self.calls_out: dict[WireId, Any] = {}
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
        self._loop = _get_hub().loop  #: the event loop of the hub this session runs on
        #: the greenlet reading this connection (set by ``reader.serve``)
        self.reader: gevent.Greenlet | None = None
        #: unix time the connection's credentials expire (0: never); see the gateway's reaper
        self.expires = 0
        #: this connection's frame/byte rate limiter (a ``ConnectionRate``), or None
        self.rate = rate
        #: the OS socket under gevent's wrapper, for non-blocking sends from the hub
        #: (None for TLS, whose writes must go through the SSL object)
        # (exactly gevent's plain socket: its TLS socket is a subclass, and asking any
        # socket for a missing attribute costs an exception on every connect)
        self.raw: Any = sock._sock if type(sock) is _PlainSocket else None

    def __repr__(self) -> str:
        return f"<{self.role} {self.id} {self.addr}>"

    # -- reading (the loop that waits is the reader's: frontier.sessions.reader) -------------

    def take_frames(self, dispatch: Callable[["Session", Any], None], budget: int) -> int:
        """Hand up to ``budget`` of the frames already received to ``dispatch`` (events,
        or lean field lists when :attr:`lean`); return how many, or -1 once the peer
        closed. Fewer than ``budget`` (and not closed): the machine needs more bytes.
        Compiled, one call per read instead of two per frame from the reader; it never
        waits (dispatching does not block), so no compiled frame is on an idle
        connection's stack."""
        conn = self.conn
        lean = self.lean
        taken = 0
        while taken < budget and not self.closed:
            event = conn.next_frame(lean)
            if event is NEED_DATA:
                break
            if type(event) is PeerClosed:
                return -1
            dispatch(self, event)
            taken += 1
        return taken

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
            self._loop.run_callback(self._flush)

    def _flush(self) -> None:
        """Runs in the hub: send what is queued without blocking; hand any rest to a writer."""
        self._flush_pending = False
        out = self._out
        if self._writer is not None or not out:
            return
        sent = 0
        if self.raw is not None:
            try:
                sent = _send_now(self.raw, out)
            except BlockingIOError:
                pass
            except OSError as exc:
                self.close(ErrorCode.CONNECTION_CLOSED, f"write failed: {exc}", log_level=logging.DEBUG, flush=False)
                return
        if sent == len(out):
            _clear(out)
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
        reader = self.reader
        if reader is not None and reader is not gevent.getcurrent() and not reader.dead:
            reader.kill(Closing, block=False)

    @property
    def flushing(self) -> bool:
        """Frames are still queued, or on their way to the kernel."""
        return bool(self._out) or self._flush_pending or self._writer is not None

    def abandon_writer(self) -> bool:
        """Stop a writer greenlet still waiting to send (the peer is not reading);
        True if there was one."""
        writer = self._writer
        if writer is None:
            return False
        writer.kill(block=False)
        return True


def overdue(sessions: list[Session], heard_since: float, wall: float) -> list[Session]:
    """Of ``sessions``, those that received nothing since ``heard_since``
    (``time.monotonic``) or whose credentials expired by ``wall`` (unix time). One
    compiled pass: the heartbeat reaper looks at every connection each second, and
    an interpreted loop over 19,000 of them held the hub for milliseconds."""
    return [s for s in sessions if s.last_rx < heard_since or (s.expires and wall >= s.expires)]
