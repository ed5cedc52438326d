"""Behaviour of ``frontier.wire`` that disagrees with its own rules, pinned as strict xfails.

Each test states what the machine should do. When the wire code is fixed the test
starts passing, ``strict=True`` turns that into a failure, and the marker can go.
"""

from __future__ import annotations

import msgpack
import pytest

from frontier.wire import Connection, StreamState
from frontier.wire.codec import HEADER
from frontier.wire.errors import ErrorCode, LocalProtocolError, RemoteProtocolError, UnsupportedVersion
from frontier.wire.events import PeerClosed, Ping, Refuse, Request, StreamCredit, StreamOpen
from frontier.wire.state import MAX_WINDOW

from .helpers import CLIENT, GATEWAY, open_pair


@pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason="send() does not check credit against MAX_WINDOW; the peer raises instead")
def test_granting_credit_past_the_maximum_window_is_a_local_error() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, window=MAX_WINDOW)
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamCredit(sid, 1))  # today: sent, and the gateway raises RemoteProtocolError


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a refused StreamOpen is recorded (OPENING_LOCAL) and burns its id")
def test_a_stream_open_that_failed_to_send_leaves_no_trace() -> None:
    p = open_pair()
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamOpen(1, window=MAX_WINDOW + 1))
    assert p.client.stream_state(1) is StreamState.CLOSED
    assert p.client.open_streams == 0
    p.client.send(StreamOpen(1, window=10))


def _ill_typed(event, today: type[BaseException], id: str):
    return pytest.param(
        event, id=id,
        marks=pytest.mark.xfail(strict=True, raises=today, reason="send() does not check field types against SCHEMA"),
    )


@pytest.mark.parametrize(
    "event",
    [
        # today: sent, and the peer raises RemoteProtocolError
        _ill_typed(Request(1, "m", "not bytes", 0), pytest.fail.Exception, "str-for-bytes"),  # type: ignore[arg-type]
        _ill_typed(Ping(-1), pytest.fail.Exception, "negative"),
        _ill_typed(Ping(2**64), OverflowError, "too-big"),  # from msgpack
        _ill_typed(Refuse(1, "\ud800"), UnicodeEncodeError, "lone-surrogate"),  # from msgpack
        _ill_typed(PeerClosed(), KeyError, "not-a-frame"),
    ],
)
def test_sending_an_ill_typed_event_is_a_local_error(event) -> None:
    sender = Connection(GATEWAY) if type(event) is Refuse else open_pair().client
    with pytest.raises(LocalProtocolError):
        sender.send(event)


@pytest.mark.xfail(strict=True, raises=RemoteProtocolError, reason="Hello's field count is checked before its version")
def test_a_future_hello_with_more_fields_is_an_unsupported_version() -> None:
    g = Connection(GATEWAY)
    body = msgpack.packb([1, 2, "edge", "", [], [], [], b"", None, b"", "a v2 field"])
    g.receive_data(HEADER.pack(len(body)) + body)
    with pytest.raises(UnsupportedVersion) as info:  # today: RemoteProtocolError, PROTOCOL_ERROR
        g.next_event()
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION


@pytest.mark.xfail(strict=True, raises=BufferError, reason="the error's traceback pins a memoryview of the receive buffer")
def test_receive_data_works_while_a_decode_error_is_still_referenced() -> None:
    g = Connection(GATEWAY)
    g.receive_data(HEADER.pack(1) + b"\xc1")
    with pytest.raises(RemoteProtocolError) as info:
        g.next_event()
    assert info.value  # the caller still holds the exception (to log it, or to pick a close code)
    g.receive_data(b"more")  # today: BufferError: Existing exports of data: object cannot be re-sized
