"""The sans-io connection machine: bytes in, events out; events in, bytes out.

No sockets, no threads, no clock. Drive it like h11::

    conn = Connection(Side.CLIENT)
    sock.sendall(conn.send(Hello(PROTOCOL_VERSION, ROLE_EDGE)))
    conn.receive_data(sock.recv(65536))      # b"" means the peer closed
    while (event := conn.next_event()) is not NEED_DATA:
        ...

It checks frame sizes (before a body is read), frame schemas, the connection and
stream transitions of :mod:`frontier.wire.state`, and per-stream flow-control
windows. It does not correlate call ids: that is the application's table.
Peer violations raise :class:`RemoteProtocolError` (``.code`` says what to send
back: see :meth:`Connection.close_frame`); misuse raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

from typing import Any, Final, cast

from .codec import HEADER_SIZE, decode_fields, encode_frame, event_of, pack_fields, pack_header, unpack_header_from
from .errors import FrameTooLarge, LocalProtocolError, NotFrontier, ProtocolError, RemoteProtocolError, UnsupportedVersion
from .events import (
    FRAME_TYPES, PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE, SUPPORTED_VERSIONS, Ack, Event, GoAway, Hello, PeerClosed, Publish,
    Refuse, Request, Response, StreamAccept, StreamCredit, StreamData, StreamOpen, Welcome,
)
from .state import (
    TRANSITIONS_BY_STATE, MAX_WINDOW, STREAM_EVENTS, STREAM_TRANSITIONS, ConnState, Direction, Side,
    StreamState,
)

#: default largest frame body, both directions, until ``Welcome`` says otherwise
DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: returned by :meth:`Connection.next_event` when a whole frame is not buffered yet
NEED_DATA: Final = _NeedData()

_STREAM_EVENT_TYPES = frozenset(STREAM_EVENTS)
_CLIENT: Final = Side.CLIENT
_GATEWAY: Final = Side.GATEWAY
_IDLE: Final = ConnState.IDLE
_SEND: Final = Direction.SEND
_RECV: Final = Direction.RECV
_COMPACT_AT: Final = 1 << 16
_MAX_CLOSE_MESSAGE = 1024  # characters of a Refuse/GoAway reason
#: the smallest frame limit and heartbeat a Welcome may announce
MIN_FRAME_SIZE = 1024
#: bytes a frame may grow when the gateway relays it (its own call ids, the calling
#: edge's id, the peer's stream id): a relayed frame's body must fit
#: ``max_frame_size - RELAY_RESERVE`` (see PROTOCOL.md, "Relay reserve")
RELAY_RESERVE: Final = 64


#: frames :meth:`Connection.next_frame` and :meth:`Connection.send_fields` may pass as
#: field lists: the ones a gateway relays most, which touch no stream and change no
#: state while the connection is open (or draining)
LEAN_TYPES: Final = frozenset((Request.TYPE, Response.TYPE, Publish.TYPE, Ack.TYPE))
#: (state, sender) -> the lean frame types that sender may send then without changing it
_LEAN_BY_STATE = {
    key: frozenset(cls.TYPE for cls, nxt in rules.items() if cls.TYPE in LEAN_TYPES and nxt is key[0])
    for key, rules in TRANSITIONS_BY_STATE.items()
}
#: (state, our side) -> what the machine looks up in that state: the rules of what we
#: may send and of what the peer may send, and the lean frame types of each (one
#: lookup per state change instead of four)
_RULES_BY_STATE: Final = {
    (state, side): (TRANSITIONS_BY_STATE[(state, side)], TRANSITIONS_BY_STATE[(state, side.other)],
                    _LEAN_BY_STATE[(state, side)], _LEAN_BY_STATE[(state, side.other)])
    for state in ConnState for side in Side
}
#: a frame body up to this size is copied out of the buffer to decode (cheaper than a
#: memoryview for small frames); larger ones are decoded in place
_COPY_MAX: Final = 1 << 14


#: first bytes of protocols a frontier port meets by mistake -> what speaks them
_STRANGERS: tuple[tuple[bytes, str], ...] = (
    (b"HTTP/", "HTTP (an HTTP server answered)"),
    (b"<!DOCTYPE", "HTML (an HTTP server answered)"), (b"<!doctype", "HTML (an HTTP server answered)"),
    (b"<html", "HTML (an HTTP server answered)"), (b"<HTML", "HTML (an HTTP server answered)"),
    (b"\x16\x03", "TLS (a TLS handshake)"),
    (b"\x15\x03", "TLS (a TLS alert: the peer expects TLS)"),
    (b"SSH-", "SSH"),
    (b"PRI * HTTP/2", "HTTP/2"),
    *((method + b" ", "HTTP (an HTTP request)") for method in (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH")),
)


def not_frontier(head: bytes, our_side: Side) -> NotFrontier | None:
    """A :class:`NotFrontier` error if ``head``, the first bytes a peer sent, belong to
    another protocol (HTTP, TLS, SSH), saying what to check; None otherwise."""
    for prefix, what in _STRANGERS:
        if head.startswith(prefix):
            break
    else:
        if len(head) < HEADER_SIZE or not all(32 <= c < 127 or c in (9, 10, 13) for c in head[:HEADER_SIZE]):
            return None
        what = "a text protocol"  # a length of four printable bytes is hundreds of megabytes
    if our_side is Side.CLIENT:
        if what.startswith("TLS"):
            hint = "if it is a frontier, its listener has TLS on: connect with tls=True or tls_ca=..."
        else:
            hint = "check the address: services connect to port 30011, edges to 30012 (30010 is the control plane)"
        return NotFrontier(f"not a frontier gateway: it speaks {what}, first bytes {head!r}; {hint}")
    return NotFrontier(f"not a frontier client: it speaks {what}, first bytes {head!r}")


class _Stream:
    """Flow-control account of one stream."""

    __slots__ = ("state", "send_window", "recv_window")

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self.send_window = 0  #: bytes we may still send
        self.recv_window = 0  #: bytes the peer may still send us


class Connection:
    """One end of a frontier connection, as a pure state machine."""

    __slots__ = (
        "our_side", "_state", "max_frame_size", "_buf", "_pos", "_eof", "_streams", "_highest", "_next_stream_id",
        "_peer_side", "_send_rules", "_recv_rules", "_lean_send", "_lean_recv", "check_sends", "peer_version",
        "last_size",
    )

    def __init__(self, our_side: Side, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, check_sends: bool = True) -> None:
        self.our_side = our_side
        #: check every sent event's fields against its schema (see ``codec.encode_body``)
        self.check_sends = check_sends
        #: the protocol version the peer's ``Hello`` named (frames are encoded for it)
        self.peer_version = PROTOCOL_VERSION
        self._peer_side = _GATEWAY if our_side is _CLIENT else _CLIENT
        self.state = _IDLE
        #: largest frame body accepted and sent; a client adopts the gateway's on ``Welcome``
        self.max_frame_size = max_frame_size
        #: bytes received and not yet consumed from ``_pos`` on: the bytes of the last
        #: read as they came when nothing was left over (no copy), else a bytearray
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._streams: dict[int, _Stream] = {}
        self._highest = [0, 0]  # highest stream id seen, by parity (0: gateway's, 1: client's)
        self._next_stream_id = 1 if our_side is _CLIENT else 2
        #: body size of the frame :meth:`next_event` returned last (relay checks read it)
        self.last_size = 0

    @property
    def state(self) -> ConnState:
        """Where the connection is in its life (see :mod:`frontier.wire.state`)."""
        return self._state

    @state.setter
    def state(self, state: ConnState) -> None:
        self._state = state
        self._send_rules, self._recv_rules, self._lean_send, self._lean_recv = _RULES_BY_STATE[(state, self.our_side)]

    # -- bytes in, events out -------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes read from the peer; ``b""`` means the peer closed."""
        if data:
            if self._eof:
                raise LocalProtocolError("data received after end of stream")
            buf, pos = self._buf, self._pos
            if pos == len(buf):  # everything before was consumed: take these bytes as they are
                self._buf = data if type(data) is bytes else bytes(data)
                self._pos = 0
            elif type(buf) is bytearray:
                buf += data
            else:  # the rest of a frame, then more: one growable buffer from here on
                rest = bytearray(buf[pos:])
                rest += data
                self._buf = rest
                self._pos = 0
        else:
            self._eof = True

    def next_event(self) -> Event | _NeedData:
        """Return the next complete event, ``NEED_DATA``, or ``PeerClosed`` at the end."""
        return cast("Event | _NeedData", self.next_frame(False))  # not lean: never a field list

    def next_frame(self, lean: bool = True) -> list | Event | _NeedData:
        """:meth:`next_event`, lean: a Request, Response, Publish or Ack that changes no
        state comes as its checked field list ``[TYPE, field, ...]`` (see
        ``codec.decode_fields``), not as an event object; everything else as from
        :meth:`next_event` (which this is with ``lean`` False). The machine's checks
        are the same."""
        while True:
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if avail >= HEADER_SIZE:
                size: int = unpack_header_from(buf, pos)[0]
                if size > self.max_frame_size:
                    if self._state is ConnState.IDLE or self._state is ConnState.HANDSHAKING:
                        stranger = not_frontier(bytes(buf[pos:pos + 16]), self.our_side)
                        if stranger is not None:
                            raise stranger
                    raise FrameTooLarge(f"frame of {size} bytes exceeds the maximum of {self.max_frame_size}")
                end = pos + HEADER_SIZE + size
                if len(buf) >= end:
                    if size <= _COPY_MAX:
                        fields = decode_fields(buf[pos + HEADER_SIZE:end])
                    else:
                        with memoryview(buf) as view:
                            body = view[pos + HEADER_SIZE:end]
                            try:
                                fields = decode_fields(body)
                            finally:
                                body.release()  # an error's traceback must not pin the buffer
                    self._consumed(end)
                    if lean and fields[0] in self._lean_recv:
                        self.last_size = size
                        return fields
                    event = event_of(fields)
                    if self._process(event, _RECV):
                        self.last_size = size
                        return event
                    continue  # a late frame for a stream already closed: dropped
            if self._eof:
                if avail:
                    raise RemoteProtocolError("connection closed in the middle of a frame")
                self.state = ConnState.CLOSED
                self._streams.clear()
                return PeerClosed()
            return NEED_DATA

    def _consumed(self, end: int) -> None:
        buf = self._buf
        if end == len(buf):
            self._buf = b""
            self._pos = 0
        elif end > _COMPACT_AT:
            self._buf = buf[end:]  # the rest, copied: what was consumed is freed
            self._pos = 0
        else:
            self._pos = end

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buf) - self._pos

    # -- events in, bytes out --------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Check ``event`` against the state and return its frame (``b""``: nothing to send)."""
        frame = encode_frame(event, self.check_sends, self.peer_version)
        if len(frame) - HEADER_SIZE > self.max_frame_size:
            raise LocalProtocolError(
                f"{type(event).__name__} frame of {len(frame) - HEADER_SIZE} bytes exceeds the maximum of {self.max_frame_size}"
            )
        return frame if self._process(event, _SEND) else b""

    def send_fields(self, fields: tuple) -> bytes:
        """:meth:`send` for a Request, Response, Publish or Ack given as its field tuple
        ``(TYPE, field, ...)``, without an event object, for a sender that does not check
        its sends (``check_sends`` False: the gateway): the same bytes, the same state
        and size checks. Anything else takes the event path."""
        if self.check_sends or fields[0] not in self._lean_send:
            return self.send(event_of(fields))  # the machine has its say
        body = pack_fields(fields)
        if len(body) > self.max_frame_size:
            raise LocalProtocolError(
                f"{FRAME_TYPES[fields[0]].__name__} frame of {len(body)} bytes exceeds the maximum of {self.max_frame_size}"
            )
        return pack_header(len(body)) + body

    def close_frame(self, code: int, message: str = "", retry_after_ms: int | None = None) -> bytes:
        """The last frame the gateway sends before closing (``Refuse`` or ``GoAway``,
        telling when to come back with ``retry_after_ms``); ``b""`` for a client, which
        just closes. The machine is CLOSED afterwards."""
        frame = b""
        message = message[:_MAX_CLOSE_MESSAGE]
        if self.our_side is Side.GATEWAY and self.state is not ConnState.CLOSED:
            if self.state in (ConnState.IDLE, ConnState.HANDSHAKING):
                frame = encode_frame(Refuse(code, message, retry_after_ms), version=self.peer_version)
            else:
                frame = encode_frame(GoAway(code, message, retry_after_ms), version=self.peer_version)
        self.state = ConnState.CLOSED
        self._streams.clear()
        return frame

    # -- streams ---------------------------------------------------------------------

    def new_stream_id(self) -> int:
        """A fresh id for a stream we open (clients odd, gateway even)."""
        sid = self._next_stream_id
        self._next_stream_id += 2
        return sid

    def stream_state(self, stream_id: int) -> StreamState:
        """State of a stream; ``CLOSED`` for ids not open now."""
        rec = self._streams.get(stream_id)
        return rec.state if rec is not None else StreamState.CLOSED

    def send_window(self, stream_id: int) -> int:
        """Bytes we may send on a stream now (0 when closed)."""
        rec = self._streams.get(stream_id)
        return rec.send_window if rec is not None else 0

    @property
    def open_streams(self) -> int:
        """Number of streams not yet closed."""
        return len(self._streams)

    # -- the rules ---------------------------------------------------------------------

    def _process(self, event: Any, direction: Direction) -> bool:  # any event type
        """Apply ``event`` to the state; False means drop it (a late stream frame)."""
        sending = direction is _SEND
        etype = type(event)
        new_state = (self._send_rules if sending else self._recv_rules).get(etype)
        if new_state is None:
            sender = self.our_side if sending else self._peer_side
            raise self._violation(sending, f"{etype.__name__} from the {sender.value} is not allowed while {self._state.value}")
        if etype in _STREAM_EVENT_TYPES:
            if not self._process_stream(event, direction, sending):
                return False
        elif etype is Hello:
            if event.version not in SUPPORTED_VERSIONS:
                raise (LocalProtocolError if sending else UnsupportedVersion)(
                    f"protocol version {event.version} is not supported (this end speaks "
                    f"{' and '.join(map(str, SUPPORTED_VERSIONS))})"
                )
            if not sending:
                self.peer_version = event.version
            if event.role not in (ROLE_SERVICE, ROLE_EDGE):
                raise self._violation(sending, f"unknown role {event.role!r}")
        elif etype is Welcome:
            if event.max_frame_size < MIN_FRAME_SIZE or not event.heartbeat_interval > 0:
                raise self._violation(sending, f"Welcome limits are unusable: max_frame_size={event.max_frame_size}, heartbeat_interval={event.heartbeat_interval}")
            self.max_frame_size = event.max_frame_size
        if new_state is not self._state:
            self.state = new_state
        return True

    def _process_stream(self, event: Any, direction: Direction, sending: bool) -> bool:  # a stream event
        sid = event.stream_id
        etype = type(event)
        if (etype is StreamOpen or etype is StreamAccept) and event.window > MAX_WINDOW:
            raise self._violation(sending, f"window {event.window} is larger than {MAX_WINDOW}")
        rec = self._streams.get(sid)
        if rec is None:
            parity = sid & 1
            if etype is StreamOpen:
                opener = self.our_side if sending else self.our_side.other
                if sid == 0 or parity != (opener is Side.CLIENT):
                    raise self._violation(sending, f"stream id {sid} has the wrong parity for the {opener.value}")
                if sid <= self._highest[parity]:
                    raise self._violation(sending, f"stream id {sid} was used before")
                self._highest[parity] = sid
            elif 0 < sid <= self._highest[parity]:
                if sending and etype is StreamData:
                    raise LocalProtocolError(f"stream {sid} is closed")
                return False  # it closed while this frame was on its way: drop it
            else:
                raise self._violation(sending, f"{etype.__name__} for unknown stream {sid}")
        new_state = STREAM_TRANSITIONS.get((rec.state if rec is not None else None, direction, etype))
        if new_state is None:
            state = rec.state.value if rec is not None else "new"
            raise self._violation(sending, f"{etype.__name__} is not allowed on stream {sid} while {state}")
        if rec is None:
            rec = self._streams[sid] = _Stream(new_state)
        if etype is StreamData:
            n = len(event.data)
            if sending:
                if n > rec.send_window:
                    raise LocalProtocolError(f"{n} bytes exceed the send window of {rec.send_window} on stream {sid}")
                rec.send_window -= n
            else:
                if n > rec.recv_window:
                    raise RemoteProtocolError(f"peer sent {n} bytes on stream {sid} with only {rec.recv_window} of window")
                rec.recv_window -= n
        elif etype is StreamCredit:
            if sending:
                if rec.recv_window + event.amount > MAX_WINDOW:
                    raise LocalProtocolError(f"credit of {event.amount} on stream {sid} would overflow the peer's window")
                rec.recv_window += event.amount
            else:
                rec.send_window += event.amount
                if rec.send_window > MAX_WINDOW:
                    raise RemoteProtocolError(f"credit on stream {sid} overflows the window")
        elif etype is StreamOpen or etype is StreamAccept:
            if sending:
                rec.recv_window = event.window
            else:
                rec.send_window = event.window
        if new_state is StreamState.CLOSED:
            del self._streams[sid]
        else:
            rec.state = new_state
        return True

    @staticmethod
    def _violation(sending: bool, message: str) -> ProtocolError:
        return LocalProtocolError(message) if sending else RemoteProtocolError(message)
