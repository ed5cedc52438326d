"""Streams: open/accept, data and credit, half-close, reset, ids, late frames, flow control."""

from __future__ import annotations

import pytest

from frontier.wire import NEED_DATA, StreamState
from frontier.wire.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from frontier.wire.events import (
    Ping, Request, StreamAccept, StreamCredit, StreamData, StreamEnd, StreamOpen, StreamReset,
)
from frontier.wire.state import MAX_WINDOW

from .helpers import CLIENT, GATEWAY, frames, open_pair

SIDES = pytest.mark.parametrize("opener", [CLIENT, GATEWAY], ids=["client-opens", "gateway-opens"])
S = StreamState


def recv_window(conn, sid: int) -> int:
    """Bytes the peer may still send us on ``sid`` (no public accessor: read the account)."""
    rec = conn._streams.get(sid)
    return rec.recv_window if rec is not None else 0


def test_stream_ids_are_odd_for_clients_and_even_for_the_gateway() -> None:
    p = open_pair()
    assert [p.client.new_stream_id() for _ in range(3)] == [1, 3, 5]
    assert [p.gateway.new_stream_id() for _ in range(3)] == [2, 4, 6]


def test_edge_opens_a_stream_to_a_service_and_the_gateway_fills_the_opener_in() -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, service="chat", window=500, timeout_ms=3000))
    assert p.client.stream_state(1) is S.OPENING_LOCAL
    assert p.gateway.stream_state(1) is S.OPENING_REMOTE
    assert p.gateway.send_window(1) == 500
    p.exchange(GATEWAY, StreamAccept(1, 700))
    assert p.client.stream_state(1) is p.gateway.stream_state(1) is S.OPEN
    assert p.client.send_window(1) == 700
    # toward a service the gateway names the opening edge
    q = open_pair()
    fwd = StreamOpen(2, edge_id=77, meta=b"\x01\x02", addr="10.0.0.7:5123", window=500, timeout_ms=2900)
    q.exchange(GATEWAY, fwd)
    assert q.client.stream_state(2) is S.OPENING_REMOTE


@SIDES
def test_data_credit_and_end_both_ways(opener) -> None:
    p = open_pair()
    acceptor = opener.other
    sid = p.open_stream(opener, window=10, accept_window=6)
    a, b = p.conn(opener), p.conn(acceptor)
    assert a.send_window(sid) == 6 and b.send_window(sid) == 10
    p.exchange(opener, StreamData(sid, b"abcdef"))
    assert a.send_window(sid) == 0 and recv_window(b, sid) == 0
    p.exchange(acceptor, StreamCredit(sid, 4))
    assert a.send_window(sid) == 4 and recv_window(b, sid) == 4
    p.exchange(acceptor, StreamData(sid, b"0123456789"))
    assert b.send_window(sid) == 0
    p.exchange(opener, StreamCredit(sid, 10))
    p.exchange(opener, StreamData(sid, b"ghij"), StreamEnd(sid))
    assert a.stream_state(sid) is S.LOCAL_ENDED and b.stream_state(sid) is S.REMOTE_ENDED
    p.exchange(acceptor, StreamData(sid, b"more"), StreamEnd(sid))
    assert a.stream_state(sid) is b.stream_state(sid) is S.CLOSED
    assert a.open_streams == b.open_streams == 0


@SIDES
def test_half_close_keeps_the_other_direction_open(opener) -> None:
    p = open_pair()
    sid = p.open_stream(opener)
    ender, other = opener.other, opener  # the acceptor half-closes first this time
    p.exchange(ender, StreamEnd(sid))
    assert p.conn(ender).stream_state(sid) is S.LOCAL_ENDED
    assert p.conn(other).stream_state(sid) is S.REMOTE_ENDED
    # the ender may still receive, and grant credit for what it reads
    p.exchange(other, StreamData(sid, b"x" * 100))
    p.exchange(ender, StreamCredit(sid, 100))
    p.exchange(other, StreamData(sid, b"y" * 50))
    # but may not send any more data, nor end twice
    with pytest.raises(LocalProtocolError):
        p.conn(ender).send(StreamData(sid, b"z"))
    with pytest.raises(LocalProtocolError):
        p.conn(ender).send(StreamEnd(sid))
    # a peer that sends data after its own end breaks the protocol
    p.conn(other).receive_data(frames(StreamData(sid, b"z")))
    with pytest.raises(RemoteProtocolError):
        p.conn(other).next_event()


@SIDES
@pytest.mark.parametrize("who", ["opener", "acceptor"])
@pytest.mark.parametrize("when", ["opening", "open", "local-ended", "remote-ended"])
def test_reset_from_either_side_in_any_state_closes_both(opener, who: str, when: str) -> None:
    p = open_pair()
    resetter = opener if who == "opener" else opener.other
    if when == "opening":
        sid = p.conn(opener).new_stream_id()
        p.exchange(opener, StreamOpen(sid, window=10))
    else:
        sid = p.open_stream(opener)
        if when == "local-ended":
            p.exchange(resetter, StreamEnd(sid))
        elif when == "remote-ended":
            p.exchange(resetter.other, StreamEnd(sid))
    p.exchange(resetter, StreamReset(sid, ErrorCode.STREAM_RESET, "abort"))
    assert p.client.stream_state(sid) is p.gateway.stream_state(sid) is S.CLOSED
    assert p.client.open_streams == p.gateway.open_streams == 0


def test_refusing_a_stream_is_a_reset_before_accept() -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, service="nobody", window=10))
    p.exchange(GATEWAY, StreamReset(1, ErrorCode.SERVICE_NOT_ONLINE, "no service 'nobody'"))
    assert p.client.stream_state(1) is S.CLOSED


def test_late_frames_for_a_reset_stream_are_dropped_silently() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT)
    # the client sends while the gateway's reset is on its way
    in_flight = b"".join(
        p.client.send(ev)
        for ev in (StreamData(sid, b"late"), StreamCredit(sid, 5), StreamEnd(sid), StreamReset(sid, 21))
    )
    reset = p.gateway.send(StreamReset(sid, ErrorCode.STREAM_RESET))
    p.gateway.receive_data(in_flight + p.client.send(Ping(1)))
    assert p.gateway.next_event() == Ping(1)  # the four stream frames vanished
    assert p.gateway.next_event() is NEED_DATA
    p.client.receive_data(reset)
    assert p.client.next_event() is NEED_DATA  # the client had already reset: dropped too


def test_late_frames_after_both_ends_are_dropped() -> None:
    p = open_pair()
    sid = p.open_stream(GATEWAY)
    p.exchange(CLIENT, StreamEnd(sid))
    credit = p.client.send(StreamCredit(sid, 10))  # in flight when the gateway ends
    p.exchange(GATEWAY, StreamEnd(sid))
    assert p.gateway.stream_state(sid) is S.CLOSED
    p.gateway.receive_data(credit)
    assert p.gateway.next_event() is NEED_DATA


def test_frames_on_a_closed_stream_from_our_side() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT)
    p.exchange(GATEWAY, StreamReset(sid, ErrorCode.STREAM_RESET))
    with pytest.raises(LocalProtocolError):  # data is never silently lost
        p.client.send(StreamData(sid, b"x"))
    # control frames racing with the close have nothing to do: nothing is sent
    assert p.client.send(StreamEnd(sid)) == b""
    assert p.client.send(StreamCredit(sid, 1)) == b""
    assert p.client.send(StreamReset(sid, 21)) == b""
    assert p.client.send_window(sid) == 0


# -- flow control ------------------------------------------------------------------------------------


def test_sending_beyond_the_window_is_a_local_error_and_changes_nothing() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, accept_window=5)
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamData(sid, b"123456"))
    assert p.client.send_window(sid) == 5
    p.exchange(CLIENT, StreamData(sid, b"12345"))
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamData(sid, b"6"))
    assert p.client.send(StreamData(sid, b"")) != b""  # an empty chunk costs nothing


def test_a_peer_that_exceeds_the_window_is_a_remote_error() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, window=5)
    p.client.receive_data(frames(StreamData(sid, b"123456")))
    with pytest.raises(RemoteProtocolError) as info:
        p.client.next_event()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


def test_the_window_is_enforced_cumulatively_across_frames() -> None:
    p = open_pair()
    sid = p.open_stream(GATEWAY, window=5)
    p.exchange(CLIENT, StreamData(sid, b"123"))
    p.gateway.receive_data(frames(StreamData(sid, b"456")))
    with pytest.raises(RemoteProtocolError):
        p.gateway.next_event()


def test_no_data_before_accept() -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, window=10))
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamData(1, b""))
    with pytest.raises(LocalProtocolError):  # nor may the acceptor send before accepting
        p.gateway.send(StreamData(1, b""))
    p.gateway.receive_data(frames(StreamData(1, b"")))
    with pytest.raises(RemoteProtocolError):
        p.gateway.next_event()


def test_no_credit_before_accept() -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, window=10))
    with pytest.raises(LocalProtocolError):
        p.gateway.send(StreamCredit(1, 10))
    p.client.receive_data(frames(StreamCredit(1, 10)))
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()


def test_credit_that_overflows_the_window_is_a_remote_error() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, accept_window=MAX_WINDOW - 10)
    p.exchange(GATEWAY, StreamCredit(sid, 10))  # exactly the maximum: fine
    assert p.client.send_window(sid) == MAX_WINDOW
    p.client.receive_data(frames(StreamCredit(sid, 1)))
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()


@pytest.mark.parametrize("frame", ["open", "accept"])
def test_window_larger_than_the_maximum_is_rejected(frame: str) -> None:
    p = open_pair()
    if frame == "open":
        bad = StreamOpen(1, window=MAX_WINDOW + 1)
        sender, receiver = p.client, p.gateway
    else:
        p.exchange(CLIENT, StreamOpen(1, window=10))
        bad = StreamAccept(1, MAX_WINDOW + 1)
        sender, receiver = p.gateway, p.client
    with pytest.raises(LocalProtocolError):
        sender.send(bad)
    receiver.receive_data(frames(bad))
    with pytest.raises(RemoteProtocolError):
        receiver.next_event()


def test_the_largest_window_is_allowed() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT, window=MAX_WINDOW, accept_window=MAX_WINDOW)
    assert p.client.send_window(sid) == p.gateway.send_window(sid) == MAX_WINDOW


# -- stream ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "sid"), [(CLIENT, 2), (CLIENT, 0), (GATEWAY, 1), (GATEWAY, 0)])
def test_wrong_parity_or_zero_is_rejected(side, sid: int) -> None:
    p = open_pair()
    with pytest.raises(LocalProtocolError):
        p.conn(side).send(StreamOpen(sid, window=1))
    receiver = p.conn(side.other)
    receiver.receive_data(frames(StreamOpen(sid, window=1)))
    with pytest.raises(RemoteProtocolError):
        receiver.next_event()


@pytest.mark.parametrize("reuse", [1, 3])
def test_reused_or_lower_stream_id_is_rejected(reuse: int) -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, window=1))
    p.exchange(CLIENT, StreamOpen(5, window=1))
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamOpen(reuse, window=1))
    p.gateway.receive_data(frames(StreamOpen(reuse, window=1)))
    with pytest.raises(RemoteProtocolError):
        p.gateway.next_event()


def test_an_id_cannot_come_back_after_its_stream_closed() -> None:
    p = open_pair()
    sid = p.open_stream(GATEWAY)
    p.exchange(CLIENT, StreamReset(sid, 21))
    with pytest.raises(LocalProtocolError):
        p.gateway.send(StreamOpen(sid, window=1))


@pytest.mark.parametrize(
    "event",
    [StreamAccept(9, 1), StreamData(9, b"x"), StreamCredit(9, 1), StreamEnd(9), StreamReset(9, 21)],
    ids=lambda e: type(e).__name__,
)
def test_frames_for_a_stream_never_opened_are_errors(event) -> None:
    p = open_pair()
    with pytest.raises(LocalProtocolError):
        p.client.send(event)
    p.gateway.receive_data(frames(event))
    with pytest.raises(RemoteProtocolError):
        p.gateway.next_event()


def test_stream_open_twice_and_accept_by_the_opener_are_errors() -> None:
    p = open_pair()
    p.exchange(CLIENT, StreamOpen(1, window=1))
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamAccept(1, 1))  # only the target accepts
    with pytest.raises(LocalProtocolError):
        p.client.send(StreamOpen(1, window=1))
    p.client.receive_data(frames(StreamOpen(1, window=1)))  # gateway may not use an odd id
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()


def test_state_queries_for_unknown_ids() -> None:
    p = open_pair()
    assert p.client.stream_state(12345) is S.CLOSED
    assert p.client.send_window(12345) == 0
    assert p.client.open_streams == 0


def test_calls_may_name_a_stream() -> None:
    p = open_pair()
    sid = p.open_stream(CLIENT)
    p.exchange(CLIENT, Request(1, "m", b"", 100, stream_id=sid))
    assert p.client.send_window(sid) == 100  # calls on a stream do not cost window


def test_many_streams_are_independent() -> None:
    p = open_pair()
    ids = [p.open_stream(CLIENT, accept_window=3) for _ in range(5)] + [p.open_stream(GATEWAY) for _ in range(5)]
    assert p.client.open_streams == p.gateway.open_streams == 10
    p.exchange(CLIENT, StreamData(ids[0], b"abc"))
    assert p.client.send_window(ids[0]) == 0 and p.client.send_window(ids[1]) == 3
    p.exchange(GATEWAY, StreamReset(ids[2], 21))
    assert p.client.open_streams == p.gateway.open_streams == 9
