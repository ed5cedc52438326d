"""The link's fast paths against the sans-io reference: calls and publishes framed
without event objects are byte for byte what ``encode_frame`` makes, and answers
decoded without event objects give what ``decode_body`` gives, or the same error."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontier.sdk.link import Link
from frontier.wire.codec import decode_body, encode_frame
from frontier.wire.errors import FrontierError, LocalProtocolError, RemoteProtocolError
from frontier.wire.events import Ack, Publish, Request, Response
from frontier.wire.state import ConnState

U64 = 2**64 - 1


class Capture:
    """A socket stand-in that keeps what is written (no reading is done here)."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


def open_link() -> tuple[Link, Capture]:
    sock = Capture()
    link = Link(sock, on_event=lambda link, ev: None, on_close=lambda link, error: None)  # type: ignore[arg-type]
    link.conn.state = ConnState.OPEN  # as after a Welcome
    return link, sock


class Slot:
    def __init__(self) -> None:
        self.got = None

    def answer(self, code: int, data: bytes, message: str) -> None:
        self.got = (code, data, message)

    def fail(self, error: Exception) -> None:
        self.got = error


@settings(max_examples=300, deadline=None)
@given(frame=st.sampled_from([Request, Publish]), req_id=st.integers(0, U64), name=st.text(max_size=40),
       data=st.binary(max_size=300), timeout_ms=st.integers(0, U64), edge_id=st.none() | st.integers(0, U64),
       stream_id=st.integers(0, U64))
def test_send_call_writes_what_encode_frame_makes(frame, req_id, name, data, timeout_ms, edge_id, stream_id) -> None:
    link, sock = open_link()
    event = frame(req_id, name, data, timeout_ms, edge_id, stream_id)
    try:
        expected = encode_frame(event)
    except LocalProtocolError as exc:  # e.g. a lone surrogate in the name
        with pytest.raises(LocalProtocolError, match=str(exc)[:20].replace("(", r"\(").replace("[", r"\[")):
            link.send_call(frame, req_id, name, data, timeout_ms, edge_id, stream_id)
        return
    link.send_call(frame, req_id, name, data, timeout_ms, edge_id, stream_id)
    assert bytes(sock.sent) == expected


@pytest.mark.parametrize("edge_id", [True, -1, 2**64, 1.5])
def test_send_call_refuses_what_the_codec_refuses(edge_id) -> None:
    link, sock = open_link()
    with pytest.raises(LocalProtocolError):
        link.send_call(Request, 1, "m", b"", 10, edge_id, 0)
    assert not sock.sent


def test_send_call_refuses_a_frame_larger_than_the_limit() -> None:
    link, sock = open_link()
    link.conn.max_frame_size = 1024
    with pytest.raises(LocalProtocolError, match="exceeds the maximum"):
        link.send_call(Request, 1, "m", b"x" * 2000, 10, None, 0)
    assert not sock.sent


def frame_of(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


answers = st.one_of(
    st.builds(Response, st.integers(0, U64), st.integers(0, U64), st.binary(max_size=200), st.text(max_size=30)),
    st.builds(Ack, st.integers(0, U64), st.integers(0, U64), st.text(max_size=30)),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(answers, min_size=1, max_size=6), cut=st.integers(0, 50))
def test_answers_decode_as_the_reference_does(events, cut) -> None:
    link, _ = open_link()
    slots = {}
    for ev in events:
        key = ev.call_id if type(ev) is Response else ev.msg_id
        slots[key] = link.pending[key] = Slot()
    wire = b"".join(encode_frame(ev) for ev in events)
    buf = bytearray(wire[:cut])  # arrives in two pieces, cut anywhere
    assert link._frames(buf)
    buf += wire[cut:]
    assert link._frames(buf)
    assert not buf
    expected = {}
    for ev in events:  # the last answer with an id wins, as a dict pop does the first: compare the first
        key = ev.call_id if type(ev) is Response else ev.msg_id
        if key not in expected:
            expected[key] = (ev.code, ev.data if type(ev) is Response else b"", ev.message)
    for key, slot in slots.items():
        assert slot.got == expected[key]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([Response.TYPE, Ack.TYPE]), rest=st.lists(
    st.one_of(st.integers(-5, 2**64 - 1), st.binary(max_size=5), st.text(max_size=5), st.none(), st.floats(allow_nan=False),
              st.lists(st.integers(0, 3), max_size=2)), max_size=5))
def test_malformed_answers_fail_as_the_reference_fails(kind, rest) -> None:
    body = msgpack.packb([kind, *rest])
    try:
        decode_body(body)
        reference_error = None
    except FrontierError as exc:
        reference_error = exc
    link, _ = open_link()
    buf = bytearray(frame_of(body))
    if reference_error is None:
        assert link._frames(buf)
    else:
        with pytest.raises(type(reference_error)) as got:
            link._frames(buf)
        assert str(got.value) == str(reference_error)


def test_garbage_after_an_answer_header_is_a_remote_protocol_error() -> None:
    link, _ = open_link()
    with pytest.raises(RemoteProtocolError):
        link._frames(bytearray(frame_of(b"\x95\x03\xc1\xc1\xc1")))
