"""Fuzzing: whatever bytes a peer sends, a machine yields events or raises RemoteProtocolError.

Any other exception type (KeyError, BufferError, UnicodeDecodeError, ...) fails these
tests: the gateway's read loop catches ``RemoteProtocolError`` alone to answer with
the right close code.
"""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from frontier.wire import NEED_DATA, Connection
from frontier.wire.codec import HEADER, encode_frame
from frontier.wire.errors import RemoteProtocolError
from frontier.wire.events import (
    FRAME_TYPES, PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE, Event, Hello, PeerClosed, StreamAccept,
    StreamCredit, StreamData, StreamEnd, StreamOpen, StreamReset,
)

from .helpers import CLIENT, GATEWAY, WELCOME, chunked
from .strategies import KINDS, any_event, msgpack_values

SETTINGS = settings(max_examples=200, deadline=None)

#: small numbers reach deep states (known stream ids, windows that matter) far more often
_SMALL = {
    **KINDS,
    "u": st.integers(0, 8) | KINDS["u"],
    "o": st.none() | st.integers(0, 8),
    "s": st.sampled_from(["", "edge", "service", "svc", "$edge_online"]) | KINDS["s"],
}
plausible_event = st.sampled_from(sorted(FRAME_TYPES.values(), key=lambda c: c.TYPE)).flatmap(
    lambda cls: st.builds(cls, *[_SMALL[kind] for kind in cls.SCHEMA])
)


_SID = st.integers(0, 6)
_SMALL_U = st.integers(0, 16)
#: frames on the few stream ids a machine at the "with-streams" stage knows
stream_event = st.one_of(
    st.builds(StreamOpen, _SID, window=_SMALL_U),
    st.builds(StreamAccept, _SID, _SMALL_U),
    st.builds(StreamData, _SID, st.binary(max_size=10)),
    st.builds(StreamCredit, _SID, _SMALL_U),
    st.builds(StreamEnd, _SID),
    st.builds(StreamReset, _SID, _SMALL_U),
)


def framed(body: bytes) -> bytes:
    """A correct header in front of any body."""
    return HEADER.pack(len(body)) + body


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    """A valid frame with one thing wrong: a field's value, the field count, or the type."""
    event = draw(any_event | plausible_event)
    obj = msgpack.unpackb(encode_frame(event)[4:], raw=False)
    how = draw(st.sampled_from(["replace", "drop", "append", "retype"]))
    if how == "replace":
        obj[draw(st.integers(0, len(obj) - 1))] = draw(msgpack_values)
    elif how == "drop":
        del obj[draw(st.integers(0, len(obj) - 1))]
    elif how == "append":
        obj.append(draw(msgpack_values))
    else:
        obj[0] = draw(st.integers(-2, 40))
    return framed(msgpack.packb(obj))


segment = st.one_of(
    st.binary(max_size=24),  # raw garbage (often a huge header)
    st.binary(max_size=40).map(framed),  # garbage behind an honest header
    msgpack_values.map(lambda v: framed(msgpack.packb(v))),  # any msgpack object as a body
    st.lists(msgpack_values, min_size=1, max_size=9).map(  # arrays with a real type number
        lambda v: framed(msgpack.packb([v[0] if not isinstance(v[0], int) else abs(v[0]) % 20, *v[1:]]))
    ),
    mutated_frame(),
    plausible_event.map(encode_frame),  # well-formed frames, possibly in the wrong state
    st.lists(stream_event, min_size=1, max_size=6).map(lambda evs: b"".join(map(encode_frame, evs))),
    st.lists(stream_event, min_size=1, max_size=6).map(lambda evs: b"".join(map(encode_frame, evs))),
)


def _machine(side, stage: str) -> Connection:
    """A machine of ``side`` at a given stage, driven there with real frames."""
    conn = Connection(side)
    if stage == "idle":
        return conn
    hello = Hello(PROTOCOL_VERSION, ROLE_SERVICE if stage == "open-service" else ROLE_EDGE)
    if side is GATEWAY:
        conn.receive_data(encode_frame(hello))
        assert conn.next_event() == hello
        if stage != "handshaking":
            conn.send(WELCOME)
    else:
        conn.send(hello)
        if stage != "handshaking":
            conn.receive_data(encode_frame(WELCOME))
            assert conn.next_event() == WELCOME
    if stage == "with-streams":  # a few live streams in various states to aim frames at
        opener = 1 if side is CLIENT else 2
        conn.send(StreamOpen(opener, window=8))
        conn.receive_data(encode_frame(StreamAccept(opener, 8)))
        assert conn.next_event() == StreamAccept(opener, 8)
        peer = 2 if side is CLIENT else 1
        conn.receive_data(encode_frame(StreamOpen(peer, window=8)))
        assert conn.next_event() == StreamOpen(peer, window=8)
    return conn


def run(conn: Connection, pieces: list[bytes], eof: bool) -> tuple[list[Event], type | None]:
    """Feed ``pieces`` and drain after each; stop at the first ``RemoteProtocolError``.

    Returns the events and the class of the error (None if none). Any exception other
    than ``RemoteProtocolError`` propagates and fails the test.
    """
    events: list[Event] = []
    try:
        for piece in [*pieces, *([b""] if eof else [])]:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not NEED_DATA:
                assert isinstance(event, Event)
                events.append(event)
                if type(event) is PeerClosed:
                    return events, None
    except RemoteProtocolError as exc:
        assert exc.code  # every remote error says which code to close with
        return events, type(exc)
    return events, None


stages = st.sampled_from(["idle", "handshaking", "open", "open-service", "with-streams"])


@SETTINGS
@given(stage=stages, segments=st.lists(segment, max_size=10), cuts=st.lists(st.integers(0, 4000), max_size=12), eof=st.booleans())
def test_gateway_yields_events_or_remote_protocol_error(stage: str, segments: list[bytes], cuts: list[int], eof: bool) -> None:
    data = b"".join(segments)
    run(_machine(GATEWAY, stage), chunked(data, cuts), eof)


@SETTINGS
@given(stage=stages, segments=st.lists(segment, max_size=10), cuts=st.lists(st.integers(0, 4000), max_size=12), eof=st.booleans())
def test_client_yields_events_or_remote_protocol_error(stage: str, segments: list[bytes], cuts: list[int], eof: bool) -> None:
    data = b"".join(segments)
    run(_machine(CLIENT, stage), chunked(data, cuts), eof)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_to_a_fresh_gateway(data: bytes) -> None:
    run(Connection(GATEWAY), [data] if data else [], eof=True)


@SETTINGS
@given(
    side=st.sampled_from([CLIENT, GATEWAY]), stage=stages,
    segments=st.lists(segment, max_size=8), cuts=st.lists(st.integers(0, 4000), max_size=12), eof=st.booleans(),
)
def test_chunking_never_changes_the_outcome(side, stage: str, segments: list[bytes], cuts: list[int], eof: bool) -> None:
    data = b"".join(segments)
    whole = run(_machine(side, stage), [data] if data else [], eof)
    split = run(_machine(side, stage), chunked(data, cuts), eof)
    assert split == whole


@SETTINGS
@given(
    side=st.sampled_from([CLIENT, GATEWAY]), events=st.lists(stream_event, max_size=20),
    cuts=st.lists(st.integers(0, 400), max_size=8), eof=st.booleans(),
)
def test_well_formed_stream_frames_in_any_order(side, events: list[Event], cuts: list[int], eof: bool) -> None:
    data = b"".join(map(encode_frame, events))
    run(_machine(side, "with-streams"), chunked(data, cuts), eof)
