"""A stream the gateway itself opens to an edge (the HTTP ingress's pipe to an edge).

A :class:`GatewayStream` stands where a service session would stand at the other end
of a stream: the exchange splices to it exactly as to a session (it has ``send``,
``streams``, ``conn.stream_state``...), and what it sends goes through
:meth:`Exchange.dispatch` as if a service had sent it. So credit flows end to end (a
slow reader here slows the edge), and an edge going offline resets the stream as it
resets any other. Calls and publishes the edge sends on the stream are refused by the
exchange: nobody serves them here.

It runs on the gateway's hub: ``recv`` and ``sendall`` block the calling greenlet
only, each with a deadline. What it buffers is bounded by its own ``window``: the
edge may not send more than the credit given back.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from gevent.event import Event as Signal

from frontier.wire.connection import RELAY_RESERVE
from frontier.wire.errors import ConnectionClosed, ErrorCode, FrontierError, StreamReset, Timeout, error_from_code
from frontier.wire.events import (
    Event, StreamAccept, StreamCredit, StreamData, StreamEnd, StreamOpen, StreamReset as StreamResetFrame,
)
from frontier.wire.state import StreamState

#: the only stream id a gateway stream uses on its own side
_SID = 1
#: largest StreamData payload sent at once
CHUNK = 1 << 16


class GatewayStream:
    """One gateway-originated stream to an edge, socket-like (``recv``/``sendall``/
    ``shutdown_write``/``close``), for greenlets of the gateway process.

    ``name`` travels in ``StreamOpen.service`` (the ingress uses ``$expose:<target>``);
    ``addr`` tells the edge whom the stream is for (the HTTP client's address).
    """

    role = "gateway"
    is_edge = False
    id = 0
    meta = b""

    def __init__(self, exchange: Any, name: str, *, addr: str = "", window: int = 1 << 20) -> None:
        self.exchange = exchange
        self.name = name
        self.addr = addr
        self.window = window
        #: the exchange's splice table: our id -> (edge session, its stream id)
        self.streams: dict[int, tuple[Any, int]] = {}
        self.closed = False
        self.conn = self  # the exchange asks ``peer.conn.stream_state`` and ``s.conn.last_size``
        #: size of the last frame "received" from this end: what it sends is built here,
        #: in pieces that fit the frame limit once relayed, so nothing to check
        self.last_size = 0
        self._chunks: deque[bytes] = deque()
        self._head = 0
        self._unacked = 0
        self._credit = 0
        self._max_chunk = CHUNK
        self._accepted = False
        self._remote_ended = False
        self._local_ended = False
        self._error: FrontierError | None = None
        # one event per direction: a reader and a writer greenlet may wait at once
        self._readable = Signal()
        self._writable = Signal()
        #: bytes received and sent, for metrics
        self.bytes_in = 0
        self.bytes_out = 0

    def __repr__(self) -> str:
        return f"<GatewayStream {self.name!r} {self.addr}>"

    # -- opening ---------------------------------------------------------------------

    def open(self, edge_id: int, timeout: float) -> None:
        """Open the stream to ``edge_id`` and wait until the edge accepts it; raises the
        edge's typed refusal (``EdgeNotOnline``, ``NotExposed``, ``BackendUnreachable``...)
        or ``Timeout`` (the stream is then reset)."""
        timeout_ms = max(1, int(timeout * 1000))
        self.exchange.dispatch(self, StreamOpen(_SID, self.name, edge_id, b"", self.addr, self.window, timeout_ms))
        link = self.streams.get(_SID)
        if link is not None:
            self._max_chunk = max(1024, min(CHUNK, link[0].conn.max_frame_size - RELAY_RESERVE - 64))
        deadline = time.monotonic() + timeout
        while not self._accepted:
            if self._error is not None:
                raise self._error
            if not self._wait(self._writable, deadline):
                self.reset(ErrorCode.TIMEOUT, "not accepted in time")
                raise Timeout(f"edge {edge_id} did not accept the stream within {timeout:g}s")

    # -- socket-like API -------------------------------------------------------------

    def recv(self, bufsize: int = CHUNK, timeout: float | None = None) -> bytes:
        """Up to ``bufsize`` bytes; ``b""`` once the edge ended its side. Raises
        ``Timeout`` after ``timeout`` seconds without data, or the stream's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._chunks:
            if self._remote_ended:
                return b""
            if self._error is not None:
                raise self._error
            if not self._wait(self._readable, deadline):
                raise Timeout("no data from the edge in time")
        chunk = self._chunks[0]
        if self._head == 0 and len(chunk) <= bufsize:
            self._chunks.popleft()
            data = chunk
        else:
            data = chunk[self._head:self._head + bufsize]
            self._head += len(data)
            if self._head >= len(chunk):
                self._chunks.popleft()
                self._head = 0
        self._unacked += len(data)
        if self._unacked >= self.window // 2 and not self._remote_ended and self._error is None:
            credit, self._unacked = self._unacked, 0
            self._dispatch(StreamCredit(_SID, credit))
        return data

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float | None = None) -> None:
        """Send every byte, waiting (up to ``timeout`` in all) while the edge's window is used up."""
        view = memoryview(data).cast("B")
        deadline = None if timeout is None else time.monotonic() + timeout
        while view:
            if self._error is not None:
                raise self._error
            if self._local_ended:
                raise ConnectionClosed("the stream is closed for sending")
            if self._credit <= 0:
                if not self._wait(self._writable, deadline):
                    raise Timeout("the edge did not read in time (stream window full)")
                continue
            n = min(self._credit, len(view), self._max_chunk)
            self._credit -= n
            self.bytes_out += n
            self._dispatch(StreamData(_SID, bytes(view[:n])))
            view = view[n:]

    def shutdown_write(self) -> None:
        """Half-close: the edge's local service sees the end of the request bytes."""
        if self._local_ended or self._error is not None:
            return
        self._local_ended = True
        self._dispatch(StreamEnd(_SID))

    def reset(self, code: int = ErrorCode.STREAM_RESET, message: str = "") -> None:
        """Abort the stream (the edge closes its local connection)."""
        if self._error is None:
            self._error = StreamReset(message or "reset by the gateway")
            if self.streams:
                self._dispatch(StreamResetFrame(_SID, code, message))
        self._wake_all()

    def close(self) -> None:
        """Done with the stream: reset it unless both sides ended cleanly."""
        if not (self._local_ended and self._remote_ended):
            self.reset(ErrorCode.CANCELLED, "closed by the gateway")
        self.closed = True
        self.streams.clear()

    @property
    def failed(self) -> bool:
        """True once the stream was reset (by either side) or its edge went away."""
        return self._error is not None

    # -- the exchange's side: what a session's ``send`` would put on the wire ------------

    def send(self, event: Event) -> None:
        """Called by the exchange with the frames the edge's side produced."""
        etype = type(event)
        if etype is StreamData:
            self._chunks.append(event.data)
            self.bytes_in += len(event.data)
            self._readable.set()
        elif etype is StreamCredit:
            self._credit += event.amount
            self._writable.set()
        elif etype is StreamAccept:
            self._credit = event.window
            self._accepted = True
            self._writable.set()
        elif etype is StreamEnd:
            self._remote_ended = True
            self._readable.set()
        elif etype is StreamResetFrame:
            self.streams.clear()
            if self._error is None:
                self._error = error_from_code(event.code, event.message) if event.code != ErrorCode.STREAM_RESET else StreamReset(event.message)
            self._wake_all()

    def relay(self, event: Event) -> bool:
        """The exchange relays the edge's frames with this (as to a session); always taken."""
        self.send(event)
        return True

    def stream_state(self, stream_id: int) -> StreamState:
        """The exchange's view of our side (CLOSED once both directions ended)."""
        if self._error is not None or (self._local_ended and self._remote_ended):
            return StreamState.CLOSED
        return StreamState.OPEN

    # -- internals --------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        try:
            self.exchange.dispatch(self, event)
        except FrontierError as exc:  # the edge's connection refused the frame (it is closing)
            if self._error is None:
                self._error = ConnectionClosed(f"the edge's connection failed: {exc}")
            self._wake_all()

    def _wake_all(self) -> None:
        self._readable.set()
        self._writable.set()

    @staticmethod
    def _wait(signal: Signal, deadline: float | None) -> bool:
        """Wait for the next event of one direction; False when ``deadline`` passed."""
        signal.clear()
        if deadline is None:
            signal.wait()
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        signal.wait(remaining)
        return True if signal.is_set() else time.monotonic() < deadline

