"""Frames the gateway accepts but could not relay: the fault stays with the sender.

Before, each of these raised an encode error inside a reader greenlet: a traceback,
and a dropped connection. When the unrelayable frame was a service's answer, the
*service* dropped, and every other edge's call to it failed with ServiceNotOnline.
"""

from __future__ import annotations

import threading

import pytest

from frontier.sdk import Edge, PayloadTooLarge, Service
from frontier.wire.connection import RELAY_RESERVE
from frontier.wire.errors import ErrorCode
from frontier.wire.events import (
    Ack, Ping, Pong, Publish, Request, Response, StreamAccept, StreamData, StreamOpen, StreamReset,
)

from .conftest import RawClient, assert_no_traceback

LIMIT = 16384
CONFIG = {"limits": {"max_frame_size": LIMIT, "max_handshake_size": LIMIT}}


def body_size(event) -> int:
    from frontier.wire.codec import encode_body

    return len(encode_body(event))


def padded(make, size: int):
    """``make(data)`` with ``data`` grown until the frame body is exactly ``size`` bytes."""
    n = size - body_size(make(b""))
    event = make(b"x" * n)
    while body_size(event) > size:  # the bin header grew with the data
        n -= 1
        event = make(b"x" * n)
    assert body_size(event) == size
    return event


def still_open(client: RawClient) -> None:
    """The connection still answers."""
    client.send(Ping(4242))
    assert client.wait_for(Pong).nonce == 4242


def test_a_deadline_near_2_to_the_64_is_cut_to_max_call_timeout(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"max_call_timeout": 60}})
    svc = RawClient.service(gw, "echo-svc", rpcs=("echo",))
    edge = RawClient.edge(gw)
    edge.send(Request(1, "echo", b"hi", 2**64 - 1))
    req = svc.wait_for(Request)
    assert req.timeout_ms == 60_000
    svc.send(Response(req.call_id, 0, b"hi back"))
    answer = edge.wait_for(Response)
    assert (answer.code, answer.data) == (0, b"hi back")
    still_open(edge)
    assert_no_traceback(gw)


@pytest.mark.parametrize("kind", ["call", "publish"])
def test_a_frame_at_the_limit_is_refused_with_payload_too_large(gateway_factory, kind: str) -> None:
    gw = gateway_factory(CONFIG)
    svc = RawClient.service(gw, "sink", rpcs=("sink",), topics=("sink",))
    edge = RawClient.edge(gw)
    if kind == "call":
        edge.send(padded(lambda d: Request(1, "sink", d, 5000), LIMIT))
        answer = edge.wait_for(Response)
        assert answer.call_id == 1
    else:
        edge.send(padded(lambda d: Publish(1, "sink", d, 5000), LIMIT))
        answer = edge.wait_for(Ack)
        assert answer.msg_id == 1
    assert answer.code == ErrorCode.PAYLOAD_TOO_LARGE, answer
    # one byte under the reserve goes through
    edge.send(padded(lambda d: Request(2, "sink", d, 5000), LIMIT - RELAY_RESERVE))
    assert svc.wait_for(Request).method == "sink"
    still_open(edge)
    still_open(svc)
    assert_no_traceback(gw)


def test_an_answer_too_large_to_relay_fails_that_call_only(gateway_factory) -> None:
    """The service answers one call with a body at the limit: that caller gets
    PAYLOAD_TOO_LARGE; the service stays, and another edge's call in flight succeeds."""
    gw = gateway_factory(CONFIG)
    svc = RawClient.service(gw, "big", rpcs=("big",))
    first, second = RawClient.edge(gw), RawClient.edge(gw)
    first.send(Request(1, "big", b"", 5000))
    second.send(Request(1, "big", b"", 5000))
    req_a, req_b = svc.wait_for(Request), svc.wait_for(Request)
    svc.send(padded(lambda d: Response(req_a.call_id, 0, d), LIMIT))
    svc.send(Response(req_b.call_id, 0, b"small"))
    answers = {first: first.wait_for(Response), second: second.wait_for(Response)}
    codes = sorted(a.code for a in answers.values())
    assert codes == [0, ErrorCode.PAYLOAD_TOO_LARGE], answers
    still_open(svc)
    assert_no_traceback(gw)


def test_an_edge_answer_too_large_to_relay_reaches_the_service_as_payload_too_large(gateway_factory) -> None:
    gw = gateway_factory(CONFIG)
    svc = RawClient.service(gw, "caller")
    edge = RawClient.edge(gw, rpcs=("dump",))
    svc.send(Request(1, "dump", b"", 5000, edge.welcome.id))
    req = edge.wait_for(Request)
    edge.send(padded(lambda d: Response(req.call_id, 0, d), LIMIT))
    answer = svc.wait_for(Response)
    assert answer.code == ErrorCode.PAYLOAD_TOO_LARGE, answer
    still_open(edge)
    still_open(svc)
    assert_no_traceback(gw)


def test_stream_data_at_the_limit_resets_that_stream_on_both_ends(gateway_factory) -> None:
    gw = gateway_factory(CONFIG)
    svc = RawClient.service(gw, "streams")
    edge = RawClient.edge(gw)
    edge.send(StreamOpen(1, "streams", None, b"", "", 1 << 20, 5000))
    opened = svc.wait_for(StreamOpen)
    svc.send(StreamAccept(opened.stream_id, 1 << 20))
    edge.wait_for(StreamAccept)
    edge.send(padded(lambda d: StreamData(1, d), LIMIT))
    assert edge.wait_for(StreamReset).code == ErrorCode.PAYLOAD_TOO_LARGE
    assert svc.wait_for(StreamReset).code == ErrorCode.PAYLOAD_TOO_LARGE
    still_open(edge)
    still_open(svc)
    assert_no_traceback(gw)


def test_the_sdk_raises_payload_too_large_and_keeps_its_connection(gateway_factory) -> None:
    gw = gateway_factory(CONFIG)
    svc = Service(gw.service_addr, name="echo", timeout=5)
    svc.register("echo", lambda req: req.data)
    edge = Edge(gw.edge_addr, timeout=5)
    try:
        with pytest.raises(PayloadTooLarge):
            edge.call("echo", b"x" * (LIMIT - 40))
        assert edge.call("echo", b"fits") == b"fits"
        # a stream's sendall cuts its data to chunks that leave the relay reserve free
        got: list[bytes] = []

        def serve() -> None:
            stream = svc.accept_stream(timeout=5)
            while len(b"".join(got)) < 3 * LIMIT:
                got.append(stream.recv(65536))

        server = threading.Thread(target=serve)
        server.start()
        stream = edge.open_stream("echo")
        stream.sendall(b"y" * (3 * LIMIT))
        server.join(10)
        assert b"".join(got) == b"y" * (3 * LIMIT)
    finally:
        edge.close()
        svc.close()
    assert_no_traceback(gw)
