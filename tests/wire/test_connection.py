"""The connection machine: handshake, which frame may come when, framing limits, EOF."""

from __future__ import annotations

import msgpack
import pytest

from frontier.wire import DEFAULT_MAX_FRAME_SIZE, NEED_DATA, ConnState, Connection
from frontier.wire.codec import HEADER, encode_frame
from frontier.wire.errors import (
    ErrorCode, FrameTooLarge, LocalProtocolError, RemoteProtocolError, UnsupportedVersion,
)
from frontier.wire.events import (
    PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE, Ack, Cancel, Event, GoAway, Hello, PeerClosed, Ping,
    Pong, Publish, Refuse, Register, Request, Response, StreamOpen, Welcome,
)

from .helpers import CLIENT, GATEWAY, WELCOME, Pair, drain, feed, frames, open_pair

HELLO = Hello(PROTOCOL_VERSION, ROLE_EDGE)


def raw(obj: object) -> bytes:
    """A frame whose body is any msgpack object (bypassing the event classes)."""
    body = msgpack.packb(obj)
    return HEADER.pack(len(body)) + body


# -- handshake ----------------------------------------------------------------------------


def test_edge_handshake_moves_both_machines_to_open() -> None:
    p = Pair()
    assert p.client.state is p.gateway.state is ConnState.IDLE
    hello = Hello(PROTOCOL_VERSION, ROLE_EDGE, meta=b"\x00meta", edge_id=7, credentials=b"tok")
    p.exchange(CLIENT, hello)
    assert p.client.state is p.gateway.state is ConnState.HANDSHAKING
    p.exchange(GATEWAY, WELCOME)
    assert p.client.state is p.gateway.state is ConnState.OPEN
    # both ends adopt the gateway's frame limit
    assert p.client.max_frame_size == p.gateway.max_frame_size == WELCOME.max_frame_size


def test_service_handshake_carries_name_topics_rpcs_hooks() -> None:
    p = Pair()
    hello = Hello(
        PROTOCOL_VERSION, ROLE_SERVICE, name="billing", topics=("t1", "t2"), rpcs=("add", "sub"),
        hooks=("get_edge_id", "edge_online", "edge_offline"),
    )
    p.exchange(CLIENT, hello)
    p.exchange(GATEWAY, WELCOME)
    assert p.gateway.state is ConnState.OPEN


def test_handshake_refused_closes_both_ends() -> None:
    p = Pair()
    p.exchange(CLIENT, HELLO)
    p.exchange(GATEWAY, Refuse(ErrorCode.UNAUTHORIZED, "bad token"))
    assert p.client.state is p.gateway.state is ConnState.CLOSED
    p.client.receive_data(b"")  # the gateway then closes the socket
    assert drain(p.client) == [PeerClosed()]


def test_gateway_may_refuse_before_hello_arrives() -> None:
    p = Pair()
    got = p.send(GATEWAY, Refuse(ErrorCode.REFUSED, "full"))
    assert got == [Refuse(ErrorCode.REFUSED, "full")]
    assert p.client.state is p.gateway.state is ConnState.CLOSED


def test_unsupported_version_raises_with_its_code_and_refuse_follows() -> None:
    g = Connection(GATEWAY)
    g.receive_data(frames(Hello(PROTOCOL_VERSION + 1, ROLE_EDGE)))
    with pytest.raises(UnsupportedVersion) as info:
        g.next_event()
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION
    assert g.state is ConnState.IDLE
    closing = g.close_frame(info.value.code, info.value.message)
    c = Connection(CLIENT)
    c.send(HELLO)
    assert feed(c, closing) == [Refuse(ErrorCode.UNSUPPORTED_VERSION, info.value.message)]


def test_a_version_1_client_gets_version_1_closing_frames() -> None:
    """The gateway accepts version 1 and answers it without version 2's
    ``retry_after_ms``; a version-2 client reads the delay."""
    import msgpack

    for version, body in ((1, [GoAway.TYPE, ErrorCode.KICKED, "kicked"]),
                          (2, [GoAway.TYPE, ErrorCode.KICKED, "kicked", 3000])):
        p = Pair()
        p.handshake(hello=Hello(version, ROLE_EDGE))
        assert p.gateway.peer_version == version
        closing = p.gateway.close_frame(ErrorCode.KICKED, "kicked", 3000)
        assert msgpack.unpackb(closing[4:]) == body
        assert feed(p.client, closing)[0] == GoAway(ErrorCode.KICKED, "kicked", 3000 if version == 2 else None)


def test_sending_an_unsupported_version_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        Connection(CLIENT).send(Hello(PROTOCOL_VERSION + 1, ROLE_EDGE))


def test_unknown_role_is_refused_both_ways() -> None:
    with pytest.raises(LocalProtocolError):
        Connection(CLIENT).send(Hello(PROTOCOL_VERSION, "admin"))
    g = Connection(GATEWAY)
    g.receive_data(frames(Hello(PROTOCOL_VERSION, "admin")))
    with pytest.raises(RemoteProtocolError) as info:
        g.next_event()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


# -- which frames may come when -----------------------------------------------------------

SOME_REQUEST = Request(1, "echo", b"x", 1000)


def _at(stage: str) -> Pair:
    p = Pair()
    if stage in ("handshaking", "open", "draining"):
        p.exchange(CLIENT, HELLO)
    if stage in ("open", "draining"):
        p.exchange(GATEWAY, WELCOME)
    if stage == "draining":
        p.exchange(GATEWAY, GoAway(ErrorCode.GOING_AWAY))
    return p


#: (stage, sender, frame): frames the protocol forbids there
FORBIDDEN = [
    ("idle", CLIENT, SOME_REQUEST),  # before Hello
    ("idle", CLIENT, Ping(1)),
    ("idle", GATEWAY, Welcome(1, 1024, 1.0, 10, 10)),  # Welcome before Hello
    ("idle", GATEWAY, Ping(1)),
    ("handshaking", CLIENT, SOME_REQUEST),  # Request before Welcome
    ("handshaking", CLIENT, Register(1, rpcs=("a",))),
    ("handshaking", CLIENT, Ping(1)),
    ("handshaking", CLIENT, Hello(PROTOCOL_VERSION, ROLE_EDGE)),  # Hello twice
    ("handshaking", GATEWAY, SOME_REQUEST),
    ("handshaking", GATEWAY, GoAway(ErrorCode.GOING_AWAY)),
    ("open", GATEWAY, Register(1, rpcs=("a",))),  # Register from the gateway
    ("open", CLIENT, GoAway(ErrorCode.GOING_AWAY)),  # GoAway from a client
    ("open", CLIENT, Hello(PROTOCOL_VERSION, ROLE_EDGE)),
    ("open", GATEWAY, Hello(PROTOCOL_VERSION, ROLE_EDGE)),
    ("open", GATEWAY, Welcome(1, 1024, 1.0, 10, 10)),  # Welcome twice
    ("open", CLIENT, Welcome(1, 1024, 1.0, 10, 10)),
    ("open", GATEWAY, Refuse(ErrorCode.REFUSED)),  # too late to refuse
    ("open", CLIENT, Refuse(ErrorCode.REFUSED)),
    ("draining", CLIENT, GoAway(ErrorCode.GOING_AWAY)),
    ("draining", GATEWAY, Welcome(1, 1024, 1.0, 10, 10)),
]


@pytest.mark.parametrize(("stage", "sender", "event"), FORBIDDEN, ids=lambda v: getattr(v, "__name__", None) or (type(v).__name__ if isinstance(v, Event) else str(v)))
def test_forbidden_frame_is_a_local_error_for_the_sender(stage: str, sender, event: Event) -> None:
    p = _at(stage)
    before = p.conn(sender).state
    with pytest.raises(LocalProtocolError):
        p.conn(sender).send(event)
    assert p.conn(sender).state is before


@pytest.mark.parametrize(("stage", "sender", "event"), FORBIDDEN, ids=lambda v: getattr(v, "__name__", None) or (type(v).__name__ if isinstance(v, Event) else str(v)))
def test_forbidden_frame_is_a_remote_error_for_the_receiver(stage: str, sender, event: Event) -> None:
    p = _at(stage)
    receiver = p.conn(sender.other)
    receiver.receive_data(frames(event))
    with pytest.raises(RemoteProtocolError) as info:
        receiver.next_event()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


# -- every non-stream frame round-trips through a live pair ----------------------------------

BOTH_WAYS = [
    Request(1, "echo", b"\x00\xff", 1500),
    Request(2, "echo", b"", 0, edge_id=99),
    Request(3, "on-stream", b"d", 10, stream_id=5),
    Response(1, 0, b"pong"),
    Response(2, ErrorCode.RPC_NOT_ONLINE, b"", "no such method"),
    Cancel(3),
    Publish(1, "telemetry", b"{}", 2000),
    Publish(2, "", b"m", 0, edge_id=2**64 - 1),
    Ack(1),
    Ack(2, ErrorCode.REMOTE_ERROR, "bad payload"),
    Ping(0),
    Pong(2**64 - 1),
]


@pytest.mark.parametrize("event", BOTH_WAYS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("sender", [CLIENT, GATEWAY], ids=["from-client", "from-gateway"])
def test_dataplane_frame_round_trips(sender, event: Event) -> None:
    p = open_pair()
    p.exchange(sender, event)
    assert p.client.state is p.gateway.state is ConnState.OPEN


def test_register_round_trips_from_the_client() -> None:
    p = open_pair()
    p.exchange(CLIENT, Register(9, rpcs=("add",), topics=("t",), hooks=("edge_online",)))
    p.exchange(GATEWAY, Response(9))


def test_goaway_drains_and_work_still_flows() -> None:
    p = open_pair()
    p.exchange(GATEWAY, GoAway(ErrorCode.GOING_AWAY, "restarting"))
    assert p.client.state is p.gateway.state is ConnState.DRAINING
    # in-flight work may finish; the wire does not forbid frames while draining
    p.exchange(CLIENT, Response(4, 0, b"late answer"), Ack(5), Ping(1))
    p.exchange(GATEWAY, Pong(1), Request(8, "m", b"", 10))
    p.exchange(CLIENT, Register(10, rpcs=("x",)))
    p.exchange(GATEWAY, GoAway(ErrorCode.KICKED, "bye"))  # a second GoAway announces the close
    assert p.client.state is ConnState.DRAINING


# -- close_frame ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("idle", Refuse(ErrorCode.PROTOCOL_ERROR, "m")),
        ("handshaking", Refuse(ErrorCode.PROTOCOL_ERROR, "m")),
        ("open", GoAway(ErrorCode.PROTOCOL_ERROR, "m")),
        ("draining", GoAway(ErrorCode.PROTOCOL_ERROR, "m")),
    ],
)
def test_close_frame_is_refuse_before_welcome_and_goaway_after(stage: str, expected: Event) -> None:
    p = _at(stage)
    data = p.gateway.close_frame(ErrorCode.PROTOCOL_ERROR, "m")
    assert data == encode_frame(expected)
    assert p.gateway.state is ConnState.CLOSED
    assert feed(p.client, data) == [expected]
    assert p.client.state is (ConnState.CLOSED if type(expected) is Refuse else ConnState.DRAINING)
    assert p.gateway.close_frame(ErrorCode.INTERNAL) == b""  # once closed, nothing more


def test_close_frame_of_a_client_is_empty() -> None:
    p = open_pair()
    assert p.client.close_frame(ErrorCode.PROTOCOL_ERROR) == b""
    assert p.client.state is ConnState.CLOSED
    with pytest.raises(LocalProtocolError):
        p.client.send(Ping(1))


def test_nothing_may_be_sent_after_close() -> None:
    p = open_pair()
    p.gateway.close_frame(ErrorCode.GOING_AWAY)
    with pytest.raises(LocalProtocolError):
        p.gateway.send(Ping(1))


# -- frame size --------------------------------------------------------------------------------


def test_max_frame_size_is_enforced_from_the_header_alone() -> None:
    g = Connection(GATEWAY)
    g.receive_data(HEADER.pack(1 << 30))  # announces 1 GB; no body follows
    with pytest.raises(FrameTooLarge) as info:
        g.next_event()
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE
    assert g.buffered == 4


def test_frame_of_exactly_the_maximum_is_accepted_and_one_more_is_not() -> None:
    p = open_pair()
    limit = WELCOME.max_frame_size
    overhead = len(encode_frame(Request(1, "m", b"", 0))) - 4
    # bin8/16 header size grows with the payload; find a payload filling exactly `limit`
    for extra in range(3):
        ev = Request(1, "m", b"x" * (limit - overhead - extra), 0)
        if len(encode_frame(ev)) - 4 == limit:
            break
    else:  # pragma: no cover
        raise AssertionError("could not size a frame to the limit")
    p.exchange(CLIENT, ev)
    big = Request(1, "m", ev.data + b"x", 0)
    with pytest.raises(LocalProtocolError):
        p.client.send(big)
    p.gateway.receive_data(frames(big))
    with pytest.raises(FrameTooLarge):
        p.gateway.next_event()


def test_client_adopts_the_welcome_limit_for_what_it_receives() -> None:
    p = Pair()
    p.exchange(CLIENT, HELLO)
    p.exchange(GATEWAY, Welcome(1, 1024, 1.0, 10, 10))
    p.client.receive_data(frames(Response(1, 0, b"x" * 1100)))
    with pytest.raises(FrameTooLarge):
        p.client.next_event()


def test_a_welcome_with_unusable_limits_is_refused() -> None:
    p = Pair()
    p.exchange(CLIENT, HELLO)
    p.client.receive_data(frames(Welcome(1, 64, 1.0, 10, 10)))
    with pytest.raises(RemoteProtocolError, match="unusable"):
        p.client.next_event()


def test_default_limit_applies_before_welcome() -> None:
    g = Connection(GATEWAY)
    assert g.max_frame_size == DEFAULT_MAX_FRAME_SIZE
    g.receive_data(HEADER.pack(DEFAULT_MAX_FRAME_SIZE + 1))
    with pytest.raises(FrameTooLarge):
        g.next_event()
    small = Connection(GATEWAY, max_frame_size=8)
    small.receive_data(frames(Hello(PROTOCOL_VERSION, ROLE_EDGE)))
    with pytest.raises(FrameTooLarge):
        small.next_event()


# -- end of file --------------------------------------------------------------------------------


def test_clean_eof_gives_peer_closed() -> None:
    p = open_pair()
    p.gateway.receive_data(b"")
    assert p.gateway.next_event() == PeerClosed()
    assert p.gateway.state is ConnState.CLOSED
    assert p.gateway.next_event() == PeerClosed()  # and keeps saying so
    with pytest.raises(LocalProtocolError):
        p.gateway.receive_data(b"more")


def test_frames_before_eof_come_out_first() -> None:
    p = open_pair()
    p.gateway.receive_data(p.client.send(Ping(1)) + p.client.send(Ping(2)))
    p.gateway.receive_data(b"")
    assert drain(p.gateway) == [Ping(1), Ping(2), PeerClosed()]


@pytest.mark.parametrize("keep", [1, 3, 4, 6])
def test_truncated_frame_at_eof_is_a_remote_error(keep: int) -> None:
    p = open_pair()
    data = p.client.send(Ping(300))
    p.gateway.receive_data(data[:keep])
    assert p.gateway.next_event() is NEED_DATA
    p.gateway.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        p.gateway.next_event()


def test_eof_before_anything_is_peer_closed() -> None:
    g = Connection(GATEWAY)
    g.receive_data(b"")
    assert g.next_event() == PeerClosed()


# -- chunking ----------------------------------------------------------------------------------


def test_one_byte_chunks_parse_the_same_as_whole_data() -> None:
    p = Pair()
    sent = [Hello(PROTOCOL_VERSION, ROLE_SERVICE, name="svc", rpcs=("a", "b"), topics=("t",))]
    data = p.client.send(sent[0])
    p.gateway.receive_data(data)
    drain(p.gateway)
    feed(p.client, p.gateway.send(WELCOME))
    later = [
        Request(1, "a", b"\x00" * 300, 100), Publish(2, "t", b"p" * 60000, 0), Ping(7),
        StreamOpen(1, service="svc", window=10), Register(3, topics=("u",)), Cancel(1),
    ]
    data += b"".join(p.client.send(ev) for ev in later)
    sent += later

    whole = Connection(GATEWAY)
    events = feed(whole, data[: len(encode_frame(sent[0]))])
    whole.send(WELCOME)
    events += feed(whole, data[len(encode_frame(sent[0])):])

    bytewise = Connection(GATEWAY)
    first = len(encode_frame(sent[0]))
    events1 = feed(bytewise, data[:first], chunk=1)
    bytewise.send(WELCOME)
    events1 += feed(bytewise, data[first:], chunk=1)
    assert events == events1 == sent
    assert bytewise.buffered == 0


def test_many_frames_in_one_read_beyond_the_compaction_threshold() -> None:
    p = open_pair()
    pings = [Ping(i) for i in range(30000)]  # ~90 KB buffered at once
    data = b"".join(p.client.send(ev) for ev in pings)
    assert len(data) > 1 << 16
    assert feed(p.gateway, data + p.client.send(Pong(1))[:2]) == pings
    assert p.gateway.buffered == 2


# -- garbage frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        HEADER.pack(0),  # empty body
        HEADER.pack(1) + b"\xc1",  # the one byte msgpack never uses
        raw({"type": 16}),  # not an array
        raw([]),  # empty array
        raw(["16", 1]),  # type is not an int
        raw([True, 1]),  # bool is not an int
        raw([99, 1]),  # unknown type
        raw([16]),  # too few fields
        raw([16, 1, 2]),  # too many fields
        raw([16, -1]),  # negative
        raw([16, 1.0]),  # float for an int
        raw([16, None]),  # nil where not optional
        HEADER.pack(4) + b"\x92\x10\x01\x00",  # trailing bytes inside the body
        HEADER.pack(2) + b"\x92\x10",  # body ends inside the array
        HEADER.pack(3) + b"\xd4\x01\x00",  # an extension type
    ],
)
def test_garbage_frame_is_a_remote_protocol_error(data: bytes) -> None:
    p = open_pair()
    p.gateway.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        p.gateway.next_event()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


# -- the receive buffer --------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_received_buffers_are_not_shared_with_the_caller(kind) -> None:
    """The machine keeps a read's bytes as they came when nothing was left over; a
    caller's mutable buffer is copied, so reusing it cannot change frames not yet read."""
    pings = [Ping(n) for n in range(1, 4)]
    data = b"".join(encode_frame(p) for p in pings)
    pair = open_pair()
    events = []
    for piece in (data[:5], data[5:len(data) - 4], data[len(data) - 4:]):  # frames split across reads
        chunk = bytearray(piece)
        pair.gateway.receive_data(bytes(chunk) if kind is bytes else kind(chunk))
        chunk[:] = b"\xff" * len(chunk)  # the caller reuses its buffer at once
        while (event := pair.gateway.next_event()) is not NEED_DATA:
            events.append(event)
    assert events == pings
    assert pair.gateway.buffered == 0
