"""Coverage-guided fuzzing of the frame decoder with atheris (libFuzzer).

Invariant: whatever bytes a peer sends, cut into whatever chunks, to either end
(gateway or client), before or after the handshake, the machine yields events or
raises ``RemoteProtocolError`` (or a subclass), never anything else; it never holds
more bytes than it was given (a header announcing 1 GiB allocates nothing); and a
body that decodes re-encodes to a body that decodes to the same event.

Run it (until stopped, or for a while)::

    make fuzz                                   # FUZZ_SECONDS=600 make fuzz
    python tests/fuzz/fuzz_decoder.py CORPUS_DIR -max_total_time=60 -rss_limit_mb=1024

``CORPUS_DIR`` is created and seeded with a valid frame of every type when empty;
libFuzzer adds what it finds there. A crash leaves ``crash-<sha1>`` in the working
directory: replay it with ``python tests/fuzz/fuzz_decoder.py crash-<sha1>``.

Input layout: byte 0 picks the end and its state (see :data:`MODES`), byte 1 the
chunk size, the rest is the byte stream (and, whole, a frame body for the direct
decoder check).
"""

from __future__ import annotations

import sys

try:
    import atheris
except ImportError:  # the in-suite fallback drives one_input without it
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["frontier.wire"]):
        from frontier.wire import NEED_DATA, Connection, Side
        from frontier.wire.codec import HEADER, decode_body, encode_body, encode_frame
        from frontier.wire.errors import RemoteProtocolError
        from frontier.wire import events as ev
else:
    from frontier.wire import NEED_DATA, Connection, Side
    from frontier.wire.codec import HEADER, decode_body, encode_body, encode_frame
    from frontier.wire.errors import RemoteProtocolError
    from frontier.wire import events as ev

#: small frame limit, so that frames just over it are cheap to try
MAX_FRAME = 4096
#: (our side, handshake done) for input byte 0 modulo 4
MODES = ((Side.GATEWAY, False), (Side.GATEWAY, True), (Side.CLIENT, False), (Side.CLIENT, True))

_HELLO = ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_EDGE)
_WELCOME = ev.Welcome(7, MAX_FRAME, 15.0, 65536, 16)


def machine(side: Side, open_: bool) -> Connection:
    """A machine at the start, or right after a completed handshake."""
    conn = Connection(side, max_frame_size=MAX_FRAME)
    if open_:
        if side is Side.GATEWAY:
            conn.receive_data(encode_frame(_HELLO))
            assert conn.next_event() == _HELLO
            conn.send(_WELCOME)
        else:
            conn.send(_HELLO)
            conn.receive_data(encode_frame(_WELCOME))
            assert conn.next_event() == _WELCOME
    return conn


def one_input(data: bytes) -> None:
    """The fuzz target: raises (AssertionError or the unexpected error) on a violation."""
    if len(data) < 2:
        return
    side, open_ = MODES[data[0] & 3]
    chunk = data[1] or 1
    payload = data[2:]
    conn = machine(side, open_)
    fed = 0
    try:
        for start in range(0, len(payload), chunk):
            piece = payload[start:start + chunk]
            conn.receive_data(piece)
            fed += len(piece)
            while True:
                event = conn.next_event()
                if event is NEED_DATA or type(event) is ev.PeerClosed:
                    break
            assert conn.buffered <= fed and len(conn._buf) <= fed, "the machine holds more than it was given"
        conn.receive_data(b"")
        while conn.next_event() is not NEED_DATA and conn.state.value != "closed":
            pass
    except RemoteProtocolError:
        pass
    try:
        decoded = decode_body(payload)
    except RemoteProtocolError:
        return
    again = decode_body(encode_body(decoded))
    assert again == decoded, (decoded, again)


def seeds() -> list[bytes]:
    """One valid frame of every type, for each mode, and a few classic edge cases."""
    frames = [
        ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_SERVICE, "svc", ("t",), ("m",), ("edge_online",), b"", None, b"secret"),
        ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_EDGE, meta=b"\x01\x02", edge_id=5, credentials=b"fe1.5.0.sig"),
        _WELCOME, ev.Refuse(3, "no"), ev.Request(1, "m", b"x", 1000, 9, 0), ev.Response(1, 0, b"y", ""),
        ev.Cancel(1), ev.Publish(2, "t", b"z", 1000, None, 0), ev.Ack(2, 0, ""), ev.Register(3, ("a",), (), ()),
        ev.StreamOpen(1, "svc", None, b"", "", 65536, 1000), ev.StreamAccept(1, 65536), ev.StreamData(1, b"d" * 10),
        ev.StreamCredit(1, 10), ev.StreamEnd(1), ev.StreamReset(1, 21, "gone"), ev.Ping(1), ev.Pong(1),
        ev.GoAway(15, "bye"),
    ]
    out = []
    for mode in range(4):
        for frame in frames:
            out.append(bytes([mode, 255]) + encode_frame(frame))
        out.append(bytes([mode, 3]) + b"".join(encode_frame(f) for f in frames[4:12]))
    out.append(bytes([1, 255]) + HEADER.pack(1 << 30) + b"\x00" * 16)
    out.append(bytes([0, 255]) + HEADER.pack(MAX_FRAME + 1))
    out.append(bytes([0, 255]) + encode_body(frames[0]))
    return out


if __name__ == "__main__":
    from tests.fuzz.libfuzzer import main

    main(sys.argv, atheris, one_input, seeds)
