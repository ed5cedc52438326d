"""One live connection of an SDK client: socket, protocol machine, reader thread.

Only ``socket`` and ``threading``: in a plain program the reader is an OS thread; in a
gevent-patched process the same code runs as a greenlet. The reader's receive timeout
doubles as the heartbeat clock, so a connection costs one thread, not two.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable

from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.errors import ConnectionClosed, FrontierError, ProtocolError, Timeout, error_from_code
from frontier.wire.events import Event, Hello, PeerClosed, Ping, Refuse, Welcome

log = logging.getLogger("frontier.sdk")

_RECV_SIZE = 1 << 16


class Waiter:
    """A one-shot slot a caller blocks on until the reader fills it (a lock, the
    cheapest primitive that works both with threads and under gevent)."""

    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Any = None

    def set(self, value: Any) -> None:
        """Fill the slot and wake the waiter; call at most once."""
        self.value = value
        self._lock.release()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if the slot was filled."""
        return self._lock.acquire(timeout=max(timeout, 0.0))


class Link:
    """A connected, handshaken session with the gateway.

    ``on_event(link, event)`` is called from the reader thread for every frame after
    the handshake; ``on_close(link, error)`` once when the connection ends.
    """

    def __init__(self, sock: socket.socket, *, on_event: Callable[["Link", Event], None], on_close: Callable[["Link", FrontierError], None]) -> None:
        self.sock = sock
        self.conn = Connection(Side.CLIENT)
        self.welcome: Welcome | None = None
        #: outstanding calls/publishes/registrations by id -> Waiter
        self.pending: dict[int, Waiter] = {}
        #: streams by stream id
        self.streams: dict[int, Any] = {}
        self.closed = False
        self.draining = False
        self.error: FrontierError | None = None
        self._on_event = on_event
        self._on_close = on_close
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._last_tx = time.monotonic()
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
        """Start the reader thread (after a successful handshake)."""
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
            try:
                with self._state_lock:
                    frame = self.conn.send(event)
                if frame:
                    self.sock.sendall(frame)
                    self._last_tx = time.monotonic()
            except ProtocolError:
                raise
            except OSError as exc:
                error = ConnectionClosed(f"write failed: {exc}")
                self.close(error)
                raise error from None

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
            try:
                self.sock.sendall(frame)
            except OSError as exc:
                error = ConnectionClosed(f"write failed: {exc}")
                self.close(error)
                raise error from None
            self._last_tx = time.monotonic()
        return sid

    # -- reading ------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self.welcome is not None
        interval = self.welcome.heartbeat_interval
        last_rx = time.monotonic()
        nonce = 0
        error: FrontierError = ConnectionClosed("the gateway closed the connection")
        data: bytes | None = b""  # first, what arrived together with the Welcome
        try:
            self.sock.settimeout(interval)  # fails when the link was closed before its reader ran
            while True:
                now = time.monotonic()
                if data is not None:
                    last_rx = now
                    events = self._parse(data)
                    for event in events:
                        if type(event) is PeerClosed:
                            return
                        self._on_event(self, event)
                elif now - last_rx > 3 * interval:
                    error = Timeout(f"no data from the gateway for {3 * interval:.0f}s")
                    return
                if now - self._last_tx >= interval:
                    nonce += 1
                    self.send(Ping(nonce))
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except socket.timeout:
                    data = None
                    continue
                if not data:
                    return  # the gateway closed the connection
        except FrontierError as exc:
            error = exc
        except OSError as exc:
            error = ConnectionClosed(f"read failed: {exc}")
        except Exception as exc:  # a bug must not leave callers hanging
            log.exception("frontier reader crashed")
            error = ConnectionClosed(f"reader failed: {exc!r}")
        finally:
            self.close(self.error or error)

    def _parse(self, data: bytes) -> list[Event]:
        """Feed ``data`` (``b""``: nothing new) and return every complete event."""
        events = []
        with self._state_lock:
            if data:
                self.conn.receive_data(data)
            while True:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    break
                events.append(event)
                if type(event) is PeerClosed:
                    break
        return events

    # -- closing -------------------------------------------------------------------------------

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
        for waiter in pending.values():
            waiter.set(self.error)
        self._on_close(self, self.error)

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
