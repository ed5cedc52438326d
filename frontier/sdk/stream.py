"""A socket-like, ordered, lossless, flow-controlled byte pipe to one peer.

``sendall`` blocks while the peer's window is used up (a slow reader slows its
writer; nothing is dropped), but not forever: without ``settimeout`` it waits at most
the client's ``timeout`` for the peer to read. ``recv`` returns credit as the
application consumes bytes. A stream also carries calls and messages straight to its
other end.

A stream the peer opens is *offered* until the application takes it with
``accept_stream``; only then is it accepted on the wire (the opener's
``open_stream`` returns), and one not taken in time is refused.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from frontier.wire.connection import RELAY_RESERVE
from frontier.wire.errors import ConnectionClosed, ErrorCode, FrontierError, StreamReset, Timeout, error_from_code
from frontier.wire.events import StreamAccept, StreamCredit, StreamData, StreamEnd, StreamReset as StreamResetFrame

from .payload import Data

if TYPE_CHECKING:
    from .client import Client
    from .link import Link
    from .message import Message, Request

#: frame payload per StreamData (well under the 1 MiB default frame limit)
CHUNK = 1 << 16
#: bytes of a StreamData body besides its data (array and type bytes, the stream id,
#: the bin header), so a chunk's frame leaves the gateway its relay reserve
_STREAM_DATA_FIELDS = 16

_DEFAULT: Any = object()  # no settimeout yet: recv waits on, sendall the client's timeout


class Stream:
    """One end of a stream. Thread-safe for one reader and one writer at a time.

    On a service, a stream an edge opened knows ``edge_id``, ``meta`` and ``addr`` of
    that edge; ``service`` names the service the stream belongs to.
    """

    def __init__(self, client: "Client", link: "Link", stream_id: int, *, window: int,
                 edge_id: int | None = None, meta: bytes = b"", addr: str = "", service: str = "") -> None:
        self.stream_id = stream_id
        self.edge_id = edge_id
        self.meta = meta
        self.addr = addr
        self.service = service
        self._client = client
        self._link = link
        self._window = window
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[bytes] = deque()
        self._head = 0  # bytes of _chunks[0] already read
        self._unacked = 0  # bytes consumed but not yet credited back
        self._credit = 0  # bytes we may send
        self._remote_ended = False
        self._local_ended = False
        self._closed = False
        self._error: FrontierError | None = None
        self._timeout: Any = _DEFAULT
        self._handlers: dict[str, Callable[["Request"], Any]] = {}
        self._inbox: Any = None  # queue of Messages riding this stream, made on first use
        self._opening: Any = None  # Waiter of an open_stream not yet accepted
        self._offer: Any = None  # the accept queue holding this stream until accept_stream takes it

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} edge={self.edge_id} service={self.service!r}>"

    # -- socket-like API ------------------------------------------------------------------

    def settimeout(self, timeout: float | None) -> None:
        """Deadline for each blocking ``recv``/``sendall`` (None: wait forever).

        Until it is called, ``recv`` waits on (a dead connection still ends it) and
        ``sendall`` raises ``Timeout`` when the peer read nothing for the client's
        ``timeout`` seconds."""
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        """The current ``settimeout`` value (None until it is called)."""
        return None if self._timeout is _DEFAULT else self._timeout

    def sendall(self, data: Data) -> None:
        """Send every byte (a ``str`` as UTF-8), blocking while the peer's window is
        full (see :meth:`settimeout` for how long)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"Stream.sendall(data): data must be bytes or str, not {type(data).__name__}") from None
        wait = self._client.timeout if self._timeout is _DEFAULT else self._timeout
        deadline = None if wait is None else time.monotonic() + wait
        chunk_max = min(CHUNK, self._link.conn.max_frame_size - RELAY_RESERVE - _STREAM_DATA_FIELDS)
        while view:
            with self._cond:
                while True:
                    if self._error is not None:
                        raise self._error
                    if self._local_ended or self._closed:
                        raise ConnectionClosed("the stream is closed for sending")
                    if self._credit > 0:
                        break
                    if not self._cond.wait(_remaining(deadline)):
                        raise Timeout(f"the peer read nothing for {wait:g}s (its stream window is full); "
                                      "settimeout() waits longer")
                n = min(self._credit, len(view), chunk_max)
                self._credit -= n
            self._link.send(StreamData(self.stream_id, bytes(view[:n])))
            view = view[n:]

    send = sendall

    def recv(self, bufsize: int = CHUNK) -> bytes:
        """Up to ``bufsize`` bytes; ``b""`` once the peer ended and all was read."""
        deadline = None if self._timeout in (None, _DEFAULT) else time.monotonic() + self._timeout
        with self._cond:
            while not self._chunks:
                if self._remote_ended or self._closed:
                    return b""
                if self._error is not None:
                    raise self._error
                if not self._cond.wait(_remaining(deadline)):
                    raise Timeout("no data on the stream in time")
            out = []
            need = bufsize
            while need and self._chunks:
                chunk = self._chunks[0]
                piece = chunk[self._head:self._head + need]
                out.append(piece)
                need -= len(piece)
                self._head += len(piece)
                if self._head == len(chunk):
                    self._chunks.popleft()
                    self._head = 0
            data = out[0] if len(out) == 1 else b"".join(out)
            self._unacked += len(data)
            credit = 0
            if self._unacked >= self._window // 2:
                credit, self._unacked = self._unacked, 0
        if credit and not self._remote_ended:
            self._link.send_quiet(StreamCredit(self.stream_id, credit))
        return data

    def recv_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raise ``ConnectionClosed`` if the stream ends first."""
        parts, got = [], 0
        while got < n:
            part = self.recv(n - got)
            if not part:
                raise ConnectionClosed(f"stream ended after {got} of {n} bytes")
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def shutdown_write(self) -> None:
        """Half-close: the peer's ``recv`` returns ``b""`` after what was sent."""
        with self._cond:
            if self._local_ended or self._error is not None or self._closed:
                return
            self._local_ended = True
        self._link.send_quiet(StreamEnd(self.stream_id))
        self._forget_if_done()

    def close(self) -> None:
        """Close both directions. What the peer still sends is discarded."""
        self.shutdown_write()
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._cond.notify_all()
        self._forget_if_done()

    def makefile(self, mode: str = "rb", buffering: int = -1) -> io.BufferedIOBase:
        """A binary file object over the stream (``rb``, ``wb`` or ``rwb``)."""
        raw = _StreamIO(self, mode)
        size = io.DEFAULT_BUFFER_SIZE if buffering < 0 else max(buffering, 1)
        if "r" in mode and "w" in mode:
            return io.BufferedRWPair(raw, raw, size)
        if "w" in mode:
            return io.BufferedWriter(raw, size)
        return io.BufferedReader(raw, size)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls and messages on the stream ----------------------------------------------------

    def register(self, method: str, handler: Callable[["Request"], Any]) -> None:
        """Handle ``method`` when the peer calls it on this stream."""
        self._handlers[method] = handler

    def call(self, method: str, data: Data, timeout: float | None = None) -> bytes:
        """Call ``method`` on the stream's other end (no routing)."""
        return self._client._call(self._link, method, data, timeout, None, self.stream_id)

    def publish(self, data: Data, topic: str = "", timeout: float | None = None) -> None:
        """Publish to the stream's other end; returns after its ``done()``."""
        self._client._publish(self._link, topic, data, timeout, None, self.stream_id)

    def receive(self, timeout: float | None = None) -> "Message":
        """The next message published on this stream by the other end."""
        return self._client._take(self._messages(), timeout)

    def _messages(self) -> Any:
        if self._inbox is None:
            self._inbox = self._client._new_inbox()
        return self._inbox

    # -- fed by the reader thread ------------------------------------------------------------------

    def _on_accept(self, window: int) -> None:
        with self._cond:
            self._credit = window
            self._cond.notify_all()

    def _on_data(self, data: bytes) -> None:
        with self._cond:
            if self._closed:
                discard = len(data)
            else:
                self._chunks.append(data)
                discard = 0
                self._cond.notify_all()
        if discard and not self._remote_ended:
            self._link.send_quiet(StreamCredit(self.stream_id, discard))

    def _on_credit(self, amount: int) -> None:
        with self._cond:
            self._credit += amount
            self._cond.notify_all()

    def _on_end(self) -> None:
        with self._cond:
            self._remote_ended = True
            self._cond.notify_all()
        self._forget_if_done()

    def _on_reset(self, code: int, message: str) -> None:
        self._fail(error_from_code(code, message) if code != ErrorCode.STREAM_RESET else StreamReset(message))

    def _fail(self, error: FrontierError) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            offer, self._offer = self._offer, None
            self._cond.notify_all()
        self._link.streams.pop(self.stream_id, None)
        if offer is not None:
            _withdraw(offer, self)

    # -- offered to the application (the accepting end) ----------------------------------------

    def _accept(self) -> bool:
        """``accept_stream`` took this stream: accept it on the wire. False if it was
        refused, reset or its connection died meanwhile (take the next one)."""
        with self._cond:
            if self._offer is None or self._error is not None:
                return False
            self._offer = None
        try:
            self._link.send(StreamAccept(self.stream_id, self._window))
        except FrontierError as exc:
            self._fail(exc)
            return False
        return True

    def _expire_offer(self, code: int, message: str) -> None:
        """The accept deadline passed: refuse the stream if it is still offered."""
        with self._cond:
            offer, self._offer = self._offer, None
        if offer is None:
            return  # taken by accept_stream, or already reset
        _withdraw(offer, self)
        self._reset(code, message)

    def _reset(self, code: int, message: str) -> None:
        """Abort the stream from this side."""
        self._link.send_quiet(StreamResetFrame(self.stream_id, code, message))
        self._fail(StreamReset(message))

    def _forget_if_done(self) -> None:
        if self._local_ended and self._remote_ended:
            self._link.streams.pop(self.stream_id, None)


def _withdraw(accepts: Any, stream: Stream) -> None:
    """Take a stream no longer on offer out of its accept queue, so the backlog
    counts only streams that can still be accepted.

    ``accepts`` is a ``queue.Queue``: the standard one guards its deque with
    ``mutex``; gevent's (what ``queue.Queue`` is once monkey-patched, as under
    Locust) has no mutex and needs none, since removing from its deque never yields.
    """
    with getattr(accepts, "mutex", None) or contextlib.nullcontext():
        try:
            accepts.queue.remove(stream)
        except ValueError:
            pass  # already taken


class _StreamIO(io.RawIOBase):
    """Raw file adapter for :meth:`Stream.makefile`."""

    def __init__(self, stream: Stream, mode: str) -> None:
        super().__init__()
        self._stream = stream
        self._mode = mode

    def readable(self) -> bool:
        return "r" in self._mode

    def writable(self) -> bool:
        return "w" in self._mode

    def readinto(self, buffer: Any) -> int:
        data = self._stream.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        self._stream.sendall(data)
        return len(data)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.0)
