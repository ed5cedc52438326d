"""A call or publish an edge sends on a stream the gateway itself opened (the HTTP
ingress's pipe, a ``GatewayStream``) is refused at once with a typed answer: nobody
serves calls on the gateway's end, and the stream stays usable."""

from __future__ import annotations

import sys

import gevent

sys.modules.setdefault("atheris", None)  # the relay fuzzer's harness, in-suite mode

from frontier.exchange.gateway_stream import GatewayStream  # noqa: E402
from frontier.exchange.router import Exchange  # noqa: E402
from frontier.wire.codec import HEADER, decode_body  # noqa: E402
from frontier.wire.errors import ErrorCode  # noqa: E402
from tests.fuzz.fuzz_relay import EDGE_ID, LIMITS, Peer, _feed, _settle, encode_frame, ev  # noqa: E402


def _frames(peer: Peer) -> list[ev.Event]:
    """Every whole frame the gateway wrote to ``peer`` since the last call."""
    _settle()
    peer.drain()
    out, buf, pos = [], peer.transcript, 0
    while len(buf) - pos >= HEADER.size:
        size = HEADER.unpack_from(buf, pos)[0]
        out.append(decode_body(bytes(buf[pos + HEADER.size:pos + HEADER.size + size])))
        pos += HEADER.size + size
    del buf[:pos]
    return out


def test_calls_on_a_gateway_stream_are_refused_and_the_stream_stays_open() -> None:
    exchange = Exchange(limits=LIMITS)
    edge = Peer("edge", ev.Hello(ev.PROTOCOL_VERSION, ev.ROLE_EDGE, rpcs=("m",), edge_id=EDGE_ID))
    exchange.admit(edge.session, edge.hello)
    stream = GatewayStream(exchange, "$expose:ui")
    opener = gevent.spawn(stream.open, EDGE_ID, 5.0)
    frames = _frames(edge)
    assert [type(f) for f in frames] == [ev.Welcome, ev.StreamOpen]
    sid = frames[1].stream_id
    _feed(exchange, edge.session, encode_frame(ev.StreamAccept(sid, 4096)))
    opener.get(timeout=5)

    _feed(exchange, edge.session, encode_frame(ev.Request(7, "m", b"x", 1000, None, sid))
          + encode_frame(ev.Publish(8, "t", b"y", 1000, None, sid)))
    assert _frames(edge) == [
        ev.Response(7, ErrorCode.RPC_NOT_ONLINE, b"", "the gateway serves no calls on this stream"),
        ev.Ack(8, ErrorCode.TOPIC_NOT_ONLINE, "the gateway takes no messages on this stream"),
    ]
    assert not edge.session.calls_out and not edge.session.closed  # nothing left waiting

    _feed(exchange, edge.session, encode_frame(ev.StreamData(sid, b"still open")))
    assert stream.recv(timeout=5) == b"still open"
    stream.close()
    exchange.closed(edge.session)
    edge.close()
