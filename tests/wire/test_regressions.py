"""Regression tests for wire bugs found by the state-machine and fuzz tests.

Each was first pinned here as a strict xfail; all are fixed, and these keep them so.
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


def test_granting_credit_past_the_maximum_window_is_a_local_error() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, window=MAX_WINDOW)
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamCredit(sid, 1))


def test_a_stream_open_that_failed_to_send_leaves_no_trace() -> None:
    p = open_pair()
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamOpen(1, window=MAX_WINDOW + 1))
    assert p.client.stream_state(1) is StreamState.CLOSED
    assert p.client.open_streams == 0
    p.client.send(StreamOpen(1, window=10))


def _ill_typed(event, id: str):
    return pytest.param(event, id=id)


@pytest.mark.parametrize(
    "event",
    [
        _ill_typed(Request(1, "m", "not bytes", 0), "str-for-bytes"),  # type: ignore[arg-type]
        _ill_typed(Ping(-1), "negative"),
        _ill_typed(Ping(2**64), "too-big"),
        _ill_typed(Refuse(1, "\ud800"), "lone-surrogate"),
        _ill_typed(PeerClosed(), "not-a-frame"),
    ],
)
def test_sending_an_ill_typed_event_is_a_local_error(event) -> None:
    sender = Connection(GATEWAY) if type(event) is Refuse else open_pair().client
    with pytest.raises(LocalProtocolError):
        sender.send(event)


def test_a_future_hello_with_more_fields_is_an_unsupported_version() -> None:
    g = Connection(GATEWAY)
    body = msgpack.packb([1, 3, "edge", "", [], [], [], b"", None, b"", "a v3 field"])
    g.receive_data(HEADER.pack(len(body)) + body)
    with pytest.raises(UnsupportedVersion) as info:
        g.next_event()
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION


def test_receive_data_works_while_a_decode_error_is_still_referenced() -> None:
    g = Connection(GATEWAY)
    g.receive_data(HEADER.pack(1) + b"\xc1")
    with pytest.raises(RemoteProtocolError) as info:
        g.next_event()
    assert info.value  # the caller still holds the exception (to log it, or to pick a close code)
    g.receive_data(b"more")


def test_a_machine_without_send_checks_still_refuses_what_cannot_be_encoded() -> None:
    """The gateway skips the field check on send (its frames come from checked ones);
    encoding failures must still be local errors, never a broken frame on the wire."""
    g = Connection(GATEWAY, check_sends=False)
    with pytest.raises(LocalProtocolError):
        g.send(Refuse(1, "\ud800"))
    with pytest.raises(LocalProtocolError):
        Connection(GATEWAY, check_sends=False).send(PeerClosed())
