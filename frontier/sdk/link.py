"""One live connection of an SDK client: socket, protocol machine, reader thread.

Only ``socket`` and ``threading``: in a plain program the reader is an OS thread; in a
gevent-patched process the same code runs as a greenlet. Nothing here waits with a
timeout of its own on the hot path: the reader's ``recv`` has none, a waiting call
blocks on a lock with none, and the process's one deadline heap
(:mod:`frontier.sdk.deadlines`) wakes calls whose deadline passed and checks each
connection's heartbeat every half interval (ping when quiet, close when the gateway
went silent or a write is stuck). Calls and publishes are framed straight from their
fields with a reused ``msgpack.Packer`` (the same bytes ``frontier.wire`` would make),
and their answers are decoded without event objects; every other frame goes through
the sans-io :class:`~frontier.wire.Connection`.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any, Callable

import msgpack

from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.codec import pack_header, unpack_header_from
from frontier.wire.errors import ConnectionClosed, FrontierError, Timeout, error_from_code
from frontier.wire.events import Ack, Event, Hello, PeerClosed, Ping, Publish, Refuse, Request, Response, Welcome
from frontier.wire.state import ConnState

from . import deadlines
from .deadlines import DEADLINES

log = logging.getLogger("frontier.sdk")

_RECV_SIZE = 1 << 16
_U64 = 2**64
_monotonic = time.monotonic
_unpackb = msgpack.unpackb
_LIVE = (ConnState.OPEN, ConnState.DRAINING)  # Request/Publish/Response/Ack/Cancel are legal, state unchanged
_T_RESPONSE, _T_ACK = Response.TYPE, Ack.TYPE
#: reused packers (a ``Packer`` allocates a 1 MB buffer: one per link would cost
#: address space, one per call time); packing never blocks, so few are ever out at once
_packers: list[msgpack.Packer] = []

#: what the deadline sweeper puts in a :class:`Waiter` whose deadline passed
TIMED_OUT = object()
#: locks of finished waiters, acquired again and ready for the next one (a lock costs
#: more to make than to reuse, under gevent most of all); with the generation they
#: belong to: a forked child makes its own (see ``deadlines.GENERATION``)
_spare_locks: list[Any] = []
_spare_generation = [0]


class Waiter:
    """A one-shot slot a caller blocks on until it is filled: by the reader (an
    answer: ``(code, data, message)``), by the link's close (its error), or, for a
    call, by the process's deadline sweeper (:data:`TIMED_OUT`; an earlier fill takes
    it off the deadline queues). The caller's wait has
    no timeout of its own, so under gevent no ``Timeout`` object is made per call."""

    __slots__ = ("_lock", "value", "link", "key", "timer")

    def __init__(self, link: "Link | None" = None, key: int = 0) -> None:
        try:
            if _spare_generation[0] != deadlines.GENERATION[0]:
                _spare_locks.clear()
                _spare_generation[0] = deadlines.GENERATION[0]
            self._lock = _spare_locks.pop()
        except IndexError:
            self._lock = threading.Lock()
            self._lock.acquire()
        self.value: Any = None
        self.timer: Any = None  # its place in the deadline queues, if it has one
        self.link = link
        self.key = key

    def set(self, value: Any) -> None:
        """Fill the slot and wake the waiter; call at most once."""
        self.value = value
        timer = self.timer
        if timer is not None:
            timer[0].pop(timer[1], None)  # deadlines.cancel, inlined: the hot path
        self._lock.release()

    def answer(self, code: int, data: bytes, message: str) -> None:
        """The reader's answer (a ``Response`` or ``Ack``)."""
        self.set((code, data, message))

    def fail(self, error: FrontierError) -> None:
        """The link closed before an answer."""
        self.set(error)

    def expire(self) -> None:
        """The deadline passed (the deadline sweeper): give up unless answered."""
        link = self.link
        if link is not None and link.pending.pop(self.key, None) is self:
            self.set(TIMED_OUT)

    def take(self) -> Any:
        """Block until filled (the deadline heap bounds it); return the value. The
        lock, held again, goes back to the spares: nothing else touches it once filled."""
        lock = self._lock
        lock.acquire()
        if len(_spare_locks) < 4096:
            _spare_locks.append(lock)
        return self.value

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if the slot was filled."""
        return self._lock.acquire(timeout=max(timeout, 0.0))


class _Heartbeat:
    """A link's entry in the deadline heap: every half heartbeat interval, ping when
    nothing was sent for most of an interval, and end the link when the gateway was
    silent for three intervals or a write has been stuck for as long."""

    __slots__ = ("link", "timer")

    def __init__(self, link: "Link") -> None:
        self.link = link
        self.timer: Any = None

    def expire(self) -> None:
        link = self.link
        if link.closed:
            return
        now = _monotonic()
        interval = link.interval
        if now - link._last_rx > 3 * interval:
            link.abort(Timeout(f"no data from the gateway for {3 * interval:.0f}s"))
            return
        writing = link._writing_since
        if writing and now - writing > 3 * interval:
            link.abort(Timeout(f"a write to the gateway has been stuck for {3 * interval:.0f}s"))
            return
        if now - link._last_tx >= 0.9 * interval:
            link._nonce += 1
            COURIER.post(link, Ping(link._nonce))
        DEADLINES.add_waiter(interval / 2, self, now)


class Courier:
    """One daemon thread per process that sends the best-effort frames the deadline
    sweeper decides on (heartbeat pings, the ``Cancel`` of an expired async call), so
    the sweeper itself never waits on a socket. A write stuck here is ended by its
    link's heartbeat check like any other."""

    def __init__(self) -> None:
        self._generation = -1  # built on first use in each process (see deadlines.GENERATION)
        self._queue: Any = None

    def post(self, link: "Link", event: Event) -> None:
        """Send ``event`` on ``link`` soon, ignoring a closed link."""
        if self._generation != deadlines.GENERATION[0]:
            self._start()
        self._queue.put((link, event))

    def _start(self) -> None:
        import queue

        with deadlines._build_lock:
            if self._generation == deadlines.GENERATION[0]:
                return
            self._queue = queue.Queue()
            self._generation = deadlines.GENERATION[0]
        threading.Thread(target=self._run, args=(self._queue,), name="frontier-courier", daemon=True).start()

    @staticmethod
    def _run(jobs: Any) -> None:
        while True:
            link, event = jobs.get()
            link.send_quiet(event)


#: the process's one courier
COURIER = Courier()


def _readiness(sock: socket.socket) -> Callable[[], bytes] | None:
    """For a plain gevent socket (a gevent-patched process), a read that first waits
    until the socket is readable: after a short read the kernel's buffer was empty, so
    reading at once would fail, and gevent's ``recv`` pays a system call and a raised
    and caught exception for that before it waits (on every answer of an edge with one
    call in flight). None for any other socket (threads block in ``recv``; TLS may hold
    decrypted bytes of its own)."""
    wait, watcher, raw = (getattr(sock, name, None) for name in ("_wait", "_read_event", "_sock"))
    if wait is None or watcher is None or raw is None or isinstance(sock, ssl.SSLSocket):
        return None
    recv, raw_recv = sock.recv, raw.recv

    def read() -> bytes:
        wait(watcher)  # ends with an OSError if the socket is closed meanwhile
        try:
            return raw_recv(_RECV_SIZE)
        except BlockingIOError:  # readable, then not: let gevent's recv wait again
            return recv(_RECV_SIZE)

    return read


class Link:
    """A connected, handshaken session with the gateway.

    ``on_event(link, event)`` is called from the reader thread for every frame after
    the handshake except the answers to calls and publishes (which fill their
    ``pending`` waiter directly); ``on_close(link, error)`` once when the connection ends.
    """

    def __init__(self, sock: socket.socket, *, on_event: Callable[["Link", Event], None], on_close: Callable[["Link", FrontierError], None]) -> None:
        self.sock = sock
        self.conn = Connection(Side.CLIENT)
        self.welcome: Welcome | None = None
        #: outstanding calls/publishes/registrations by id -> Waiter (or an async call)
        self.pending: dict[int, Any] = {}
        #: streams by stream id
        self.streams: dict[int, Any] = {}
        self.closed = False
        self.draining = False
        self.error: FrontierError | None = None
        #: seconds between heartbeats (the gateway's, from ``Welcome``)
        self.interval = 15.0
        self._on_event = on_event
        self._on_close = on_close
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._last_tx = self._last_rx = _monotonic()
        self._writing_since = 0.0
        self._nonce = 0
        # a plain socket: one ``send`` (gevent's ``sendall`` asks the kernel for the
        # buffer size first, a system call per frame); a partial one is finished by ``sendall``
        self._send = sock.send if isinstance(sock, socket.socket) else None
        self._reader: threading.Thread | None = None

    # -- handshake ----------------------------------------------------------------------

    def handshake(self, hello: Hello, timeout: float) -> Welcome:
        """Send ``Hello`` and wait for ``Welcome``; raise the refusal's error type."""
        deadline = time.monotonic() + timeout
        try:
            self.sock.sendall(self.conn.send(hello))
            while True:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Timeout(f"no handshake answer within {timeout}s")
                    self.sock.settimeout(remaining)
                    self.conn.receive_data(self.sock.recv(_RECV_SIZE))
                    continue
                if isinstance(event, Welcome):
                    self.welcome = event
                    return event
                if isinstance(event, Refuse):
                    raise error_from_code(event.code, event.message, event.retry_after_ms)
                if isinstance(event, PeerClosed):
                    raise ConnectionClosed("the gateway closed the connection during the handshake")
        except socket.timeout:
            self._shutdown()
            raise Timeout(f"no handshake answer within {timeout}s") from None
        except OSError as exc:
            self._shutdown()
            raise ConnectionClosed(f"handshake failed: {exc}") from None
        except BaseException:
            self._shutdown()
            raise

    def start(self, name: str) -> None:
        """Start the reader thread and the heartbeat checks (after a successful handshake)."""
        assert self.welcome is not None
        self.interval = self.welcome.heartbeat_interval
        self._last_rx = now = _monotonic()
        DEADLINES.add_waiter(self.interval / 2, _Heartbeat(self), now)
        self._reader = threading.Thread(target=self._read_loop, name=name, daemon=True)
        self._reader.start()

    # -- writing ---------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Send one frame; raise ``ConnectionClosed`` if the link is gone.

        Thread-safe: frames from different threads never interleave.
        """
        if self.closed:
            raise self.error or ConnectionClosed("the connection is closed")
        with self._write_lock:
            with self._state_lock:
                frame = self.conn.send(event)
            if frame:
                self._sendall(frame)

    def send_call(self, frame: type[Request] | type[Publish], req_id: int, name: str, data: bytes, timeout_ms: int,
                  edge_id: int | None, stream_id: int) -> None:
        """Send a ``Request`` or ``Publish`` (the same fields in the same order) without
        building the event: packed with a reused packer, the bytes ``Connection.send``
        would make. Anything unusual (a field the codec would refuse, a frame too
        large) goes through ``Connection.send`` for its exact error."""
        if self.closed:
            raise self.error or ConnectionClosed("the connection is closed")
        body = None
        if (type(name) is str and type(data) is bytes and 0 <= timeout_ms < _U64 and type(stream_id) is int
                and 0 <= stream_id < _U64 and (edge_id is None or (type(edge_id) is int and 0 <= edge_id < _U64))
                and self.conn.state in _LIVE):
            try:
                packer = _packers.pop()
            except IndexError:
                packer = msgpack.Packer()
            try:
                body = packer.pack((frame.TYPE, req_id, name, data, timeout_ms, edge_id, stream_id))
            except (ValueError, TypeError, OverflowError):
                body = None  # the reference path raises the codec's error (the packer is dropped)
            else:
                _packers.append(packer)
        if body is None or len(body) > self.conn.max_frame_size:
            self.send(frame(req_id, name, data, timeout_ms, edge_id, stream_id))
            return
        with self._write_lock:
            self._sendall(pack_header(len(body)) + body)

    def _sendall(self, frame: bytes) -> None:
        """Under the write lock: write ``frame`` whole; a failure closes the link."""
        self._last_tx = self._writing_since = _monotonic()
        try:
            send = self._send
            if send is None:
                self.sock.sendall(frame)
            else:
                sent = send(frame)
                if sent < len(frame):
                    self.sock.sendall(memoryview(frame)[sent:])
        except OSError as exc:
            error = ConnectionClosed(f"write failed: {exc}")
            self.close(self.error or error)
            raise (self.error or error) from None
        finally:
            self._writing_since = 0.0

    def send_quiet(self, event: Event) -> None:
        """Send, ignoring a closed link (for best-effort frames such as Cancel)."""
        try:
            self.send(event)
        except FrontierError:
            pass

    def open_stream(self, make: Callable[[int], Event], register: Callable[[int], None]) -> int:
        """Allocate a stream id and send ``make(id)`` as one step, so ids reach the
        wire in increasing order even when threads open streams at once.
        ``register(id)`` runs before the frame is sent (so no answer can be missed)."""
        if self.closed:
            raise self.error or ConnectionClosed("the connection is closed")
        with self._write_lock:
            with self._state_lock:
                sid = self.conn.new_stream_id()
                frame = self.conn.send(make(sid))
            register(sid)
            self._sendall(frame)
        return sid

    # -- reading ------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        error: FrontierError = ConnectionClosed("the gateway closed the connection")
        buf = bytearray()
        try:
            self.sock.settimeout(None)  # fails when the link was closed before its reader ran
            # first, what arrived together with the Welcome
            if self.conn.buffered and not self._dispatch(self._reference(b"")):
                return
            fast = self.conn.state in _LIVE
            recv = self.sock.recv
            ready = _readiness(self.sock)
            drained = False  # the last read emptied the kernel's buffer (it was short)
            while True:
                data = ready() if drained and ready is not None else recv(_RECV_SIZE)
                drained = len(data) < _RECV_SIZE
                if not data:
                    self._dispatch(self._reference(bytes(buf), eof=True))  # a cut frame raises
                    return  # the gateway closed the connection
                self._last_rx = _monotonic()
                if fast:
                    buf += data
                    if not self._frames(buf):
                        return
                elif not self._dispatch(self._reference(data)):
                    return
        except FrontierError as exc:
            error = exc
        except OSError as exc:
            error = ConnectionClosed(f"read failed: {exc}")
        except Exception as exc:  # a bug must not leave callers hanging
            log.exception("frontier reader crashed")
            error = ConnectionClosed(f"reader failed: {exc!r}")
        finally:
            self.close(self.error or error)

    def _frames(self, buf: bytearray) -> bool:
        """Handle every whole frame in ``buf`` (and drop them from it): answers to
        calls and publishes here, decoded and checked as the codec does but with no
        event object; anything else, or anything that does not check out, through
        the protocol machine. False once the gateway closed."""
        pos, end_of_data = 0, len(buf)
        pending = self.pending
        limit = self.conn.max_frame_size
        try:
            while end_of_data - pos >= 4:
                size = unpack_header_from(buf, pos)[0]
                if size > limit:
                    self._reference(bytes(buf[pos:]))  # raises FrameTooLarge
                    raise AssertionError("the protocol machine accepted an oversized frame")
                end = pos + 4 + size
                if end > end_of_data:
                    break
                if size > 1:
                    head, kind = buf[pos + 4], buf[pos + 5]
                    if (kind == _T_RESPONSE and head == 0x95) or (kind == _T_ACK and head == 0x94):
                        try:
                            obj = _unpackb(buf[pos + 4:end])
                        except Exception:
                            obj = None  # the machine says what is wrong
                        if kind == _T_RESPONSE:
                            if (type(obj) is list and len(obj) == 5 and type(obj[1]) is int and type(obj[2]) is int
                                    and type(obj[3]) is bytes and type(obj[4]) is str and obj[1] >= 0 and obj[2] >= 0):
                                waiter = pending.pop(obj[1], None)
                                if waiter is not None:
                                    waiter.answer(obj[2], obj[3], obj[4])
                                pos = end
                                continue
                        elif (type(obj) is list and len(obj) == 4 and type(obj[1]) is int and type(obj[2]) is int
                                and type(obj[3]) is str and obj[1] >= 0 and obj[2] >= 0):
                            waiter = pending.pop(obj[1], None)
                            if waiter is not None:
                                waiter.answer(obj[2], b"", obj[3])
                            pos = end
                            continue
                events = self._reference(bytes(buf[pos:end]))
                pos = end
                if not self._dispatch(events):
                    return False
        finally:
            del buf[:pos]
        return True

    def _dispatch(self, events: list[Event]) -> bool:
        """Hand events to ``on_event``; False at ``PeerClosed``."""
        for event in events:
            if type(event) is PeerClosed:
                return False
            self._on_event(self, event)
        return True

    def _reference(self, data: bytes, eof: bool = False) -> list[Event]:
        """Feed ``data`` (``b""``: nothing new) to the protocol machine and return every
        complete event (``eof``: the gateway closed after it)."""
        events = []
        with self._state_lock:
            if data:
                self.conn.receive_data(data)
            if eof:
                self.conn.receive_data(b"")
            while True:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    break
                events.append(event)
                if type(event) is PeerClosed:
                    break
        return events

    # -- closing -------------------------------------------------------------------------------

    def abort(self, error: FrontierError) -> None:
        """End the link from another thread (the heartbeat check): remember why and
        shut the socket down; the reader then closes with ``error``. Never blocks."""
        if self.closed:
            return
        if self.error is None:
            self.error = error
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, error: FrontierError | None = None) -> None:
        """Close once; every waiter gets ``error`` (default ``ConnectionClosed``).

        Does not wait for a writer blocked in ``sendall``: shutting the socket down
        makes that write fail at once."""
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
            self.error = error or ConnectionClosed("the connection was closed")
        self._shutdown()
        pending, self.pending = self.pending, {}
        while pending:
            try:
                waiter = pending.popitem()[1]
            except KeyError:  # the reader took the last one meanwhile
                break
            waiter.fail(self.error)
        self._on_close(self, self.error)

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
