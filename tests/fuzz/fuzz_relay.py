"""Coverage-guided fuzzing of the relay path: admission, routing and re-encoding.

An edge and a service are admitted to a real :class:`~frontier.exchange.router.Exchange`
as real :class:`~frontier.sessions.session.Session` objects on socket pairs. Fuzzed
bytes are fed, in records, to either session's machine, and every event goes through
the exchange exactly as the reader loop would hand it over. Invariant, after every
record:

- the only error is ``RemoteProtocolError`` (from decoding, or from the exchange: the
  peer broke the protocol), and it closes the *offender's* session, nothing else; a
  frame the gateway cannot relay must come back as a typed answer (``PAYLOAD_TOO_LARGE``,
  a stream reset), so a ``LocalProtocolError`` escaping the exchange is a violation;
- the other session is never closed by what the offender sent;
- every byte the gateway wrote to either peer splits into frames within the frame
  limit that decode (what was relayed, refused or answered is valid on the wire);
- the lean relay path (calls, publishes and answers as field lists, no event objects)
  writes exactly the bytes the reference path (events through the protocol machine)
  writes, to both peers, and closes the same sessions (compared with call deadlines
  frozen, so that wall-clock time cannot tell the two runs apart).

Run it::

    make fuzz FUZZ_TARGET=relay                 # FUZZ_SECONDS=600 to bound it
    python tests/fuzz/fuzz_relay.py CORPUS_DIR -max_total_time=60 -rss_limit_mb=1024

Input layout: records of ``[who: 1 byte (bit 0: 0 edge, 1 service)][length: 1 byte][bytes]``.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import gevent
from gevent import socket  # gevent's own sockets: the sessions need no monkey-patching

try:
    import atheris
except ImportError:  # the in-suite fallback drives one_input without it
    atheris = None


def _imports() -> None:
    global NEED_DATA, HEADER, decode_body, encode_frame, ErrorCode
    global RemoteProtocolError, ev, Exchange, Session, CallDeadlines
    from frontier.exchange.deadlines import CallDeadlines
    from frontier.exchange.router import Exchange
    from frontier.sessions.session import Session
    from frontier.wire import NEED_DATA
    from frontier.wire import events as ev
    from frontier.wire.codec import HEADER, decode_body, encode_frame
    from frontier.wire.errors import ErrorCode, RemoteProtocolError


if atheris is not None:
    with atheris.instrument_imports(include=["frontier.wire", "frontier.exchange", "frontier.sessions"]):
        _imports()
else:
    _imports()

#: a small frame limit, so that frames at and over it are cheap to try
MAX_FRAME = 2048
#: ids wide on the wire, so relayed frames really grow (the gateway's own ids start at 1)
EDGE_ID = 2**40 + 5
BIG_ID = 2**40
LIMITS = SimpleNamespace(
    max_frame_size=MAX_FRAME, heartbeat_interval=15.0, stream_window=65536, max_inflight=16, max_streams=8,
    hook_timeout=5.0, default_call_timeout=30.0, max_call_timeout=3600.0, max_registrations=64, max_name_length=64,
)


class Peer:
    """The gateway's session for one client and the client's end of its socket pair."""

    def __init__(self, role: str, hello: "ev.Hello", lean: bool = True) -> None:
        self.theirs, ours = socket.socketpair()
        self.theirs.setblocking(False)
        self.session = Session(ours, ("127.0.0.1", 1), role, max_frame_size=MAX_FRAME, max_out_bytes=1 << 20, lean=lean)
        self.session.conn.receive_data(encode_frame(hello))
        assert self.session.conn.next_event() == hello
        self.hello = hello
        self.received = bytearray()
        self.transcript = bytearray()  #: everything the gateway wrote to this client

    def drain(self) -> None:
        """Read what the gateway wrote; check it splits into valid frames within the limit."""
        while True:
            try:
                data = self.theirs.recv(1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            self.received += data
            self.transcript += data
        buf, pos = self.received, 0
        while len(buf) - pos >= HEADER.size:
            size = HEADER.unpack_from(buf, pos)[0]
            assert size <= MAX_FRAME, f"the gateway wrote a frame of {size} bytes (limit {MAX_FRAME})"
            if len(buf) - pos - HEADER.size < size:
                break
            decode_body(bytes(buf[pos + HEADER.size:pos + HEADER.size + size]))  # must not raise
            pos += HEADER.size + size
        del buf[:pos]

    def close(self) -> None:
        self.session.sock.close()
        self.theirs.close()


def _settle() -> None:
    """Let the hub run the sessions' flush callbacks."""
    gevent.sleep(0)
    gevent.sleep(0)


class _FrozenTimer:
    """A call deadline that never fires (for comparing two runs of the same input)."""

    def __init__(self, seconds: float) -> None:
        pass

    def start(self, *args: object) -> None:
        pass

    def close(self) -> None:
        pass


def one_input(data: bytes) -> None:
    """The fuzz target: raises (AssertionError or the unexpected error) on a violation."""
    run_records(data, lean=True, frozen=False)
    lean, reference = run_records(data, lean=True), run_records(data, lean=False)
    assert lean == reference, f"the lean relay path wrote {lean!r:.600} where the reference path wrote {reference!r:.600}"


def run_records(data: bytes, *, lean: bool, frozen: bool = True) -> tuple:
    """Feed the records to an admitted edge and service (see the module docstring),
    checking the invariant; return what the gateway wrote to each and which it closed.
    ``lean``: the sessions relay without event objects; ``frozen``: deadlines never fire."""
    exchange = Exchange(limits=LIMITS)
    if frozen:
        exchange._deadlines = CallDeadlines(exchange._expire, _FrozenTimer)
    service = Peer("service", ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_SERVICE, "svc", ("t",), ("echo",)), lean)
    edge = Peer("edge", ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_EDGE, rpcs=("m",), edge_id=EDGE_ID), lean)
    peers = (edge, service)
    try:
        for peer in (service, edge):
            exchange.admit(peer.session, peer.hello)
            assert peer.session.online, "the harness' own clients must be admitted"
        pos = 0
        while pos + 2 <= len(data):
            who, length = data[pos] & 1, data[pos + 1]
            chunk, pos = data[pos + 2:pos + 2 + length], pos + 2 + length
            offender, other = peers[who], peers[1 - who]
            if offender.session.closed or not chunk:  # an empty read would be the peer's end
                continue
            other_was_closed = other.session.closed  # by its own fault, earlier
            _feed(exchange, offender.session, chunk)
            _settle()
            assert other_was_closed or not other.session.closed, \
                f"{other.session.role} was closed by what the {offender.session.role} sent"
            for peer in peers:
                peer.drain()
        return tuple((bytes(peer.transcript), peer.session.closed) for peer in peers)
    finally:
        for peer in peers:
            if not peer.session.closed:
                peer.session.close(ErrorCode.GOING_AWAY, "", log_level=0, flush=False)
            exchange.closed(peer.session)
            peer.close()


def _feed(exchange: "Exchange", session: "Session", chunk: bytes) -> None:
    """What ``frontier.sessions.reader._read_loop`` does with a chunk, including how it ends a session."""
    try:
        session.conn.receive_data(chunk)
        next_event = session.conn.next_frame if session.lean else session.conn.next_event
        while not session.closed:
            event = next_event()
            if event is NEED_DATA:
                return
            if type(event) is ev.PeerClosed:
                return
            exchange.dispatch(session, event)
    except RemoteProtocolError as exc:
        session.close(exc.code, str(exc), log_level=0)
        exchange.closed(session)


def seeds() -> list[bytes]:
    """Records that reach every relay path: calls and answers both ways (gateway ids
    start at 1), publishes and acks, a stream opened, accepted, fed and reset, and
    frames at the frame limit (which must be refused, not relayed)."""

    def rec(who: int, *events: "ev.Event") -> bytes:
        out = b""
        for frame in (encode_frame(e) for e in events):
            for start in range(0, len(frame), 255):
                piece = frame[start:start + 255]
                out += bytes([who, len(piece)]) + piece
        return out

    def full(make):
        """``make(data)`` with ``data`` grown until its body is exactly the frame limit."""
        n = MAX_FRAME - len(encode_frame(make(b""))) + HEADER.size
        while len(encode_frame(make(b"x" * n))) - HEADER.size > MAX_FRAME:
            n -= 1
        return make(b"x" * n)

    e, s = 0, 1
    return [
        rec(e, ev.Request(1, "echo", b"hi", 1000)) + rec(s, ev.Response(1, 0, b"hi back")),
        rec(e, ev.Request(BIG_ID, "echo", b"hi", 2**64 - 1)) + rec(s, full(lambda d: ev.Response(1, 0, d))),
        rec(s, ev.Request(BIG_ID, "m", b"ping", 1000, EDGE_ID)) + rec(e, full(lambda d: ev.Response(1, 0, d))),
        rec(e, full(lambda d: ev.Publish(1, "t", d, 1000))) + rec(e, ev.Publish(2, "t", b"ok", 1000)) + rec(s, ev.Ack(1, 0, "")),
        rec(s, ev.Publish(BIG_ID, "", b"push", 1000, EDGE_ID)) + rec(e, full(lambda d: ev.Ack(1, 11, d.decode()))),
        rec(e, ev.StreamOpen(BIG_ID + 1, "svc", None, b"", "", 4096, 1000)) + rec(s, ev.StreamAccept(2, 4096))
        + rec(e, ev.StreamData(BIG_ID + 1, b"d" * 100)) + rec(s, full(lambda d: ev.StreamData(2, d)))
        + rec(s, full(lambda d: ev.StreamReset(2, 21, d.decode()))),
        rec(e, ev.Register(1, tuple(f"r{i}" for i in range(70)))) + rec(e, ev.Cancel(1)) + rec(e, ev.Ping(3)),
        rec(s, ev.Register(1, ("z" * 65,))) + rec(s, ev.StreamOpen(1, "", EDGE_ID, b"", "", 4096, 1000)),
    ]


if __name__ == "__main__":
    from tests.fuzz.libfuzzer import main

    main(sys.argv, atheris, one_input, seeds)
