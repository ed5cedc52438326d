"""The frame codec: layout, the pinned frame table, msgpack typing rules, round trips."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import fields

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontier.wire import codec
from frontier.wire.codec import HEADER, HEADER_SIZE, decode_body, encode_body, encode_frame
from frontier.wire.errors import RemoteProtocolError
from frontier.wire.events import FRAME_TYPES, GoAway, Ping, Refuse, Request, StreamData, Welcome

from .strategies import any_event

#: the wire table: type number -> (class name, schema, field names). Never renumber.
TABLE = {
    1: ("Hello", "usslllbob", "version role name topics rpcs hooks meta edge_id credentials"),
    2: ("Welcome", "uunuu", "id max_frame_size heartbeat_interval stream_window max_inflight"),
    3: ("Refuse", "uso", "code message retry_after_ms"),  # version 1: "us"
    4: ("Request", "usbuou", "call_id method data timeout_ms edge_id stream_id"),
    5: ("Response", "uubs", "call_id code data message"),
    6: ("Cancel", "u", "call_id"),
    7: ("Publish", "usbuou", "msg_id topic data timeout_ms edge_id stream_id"),
    8: ("Ack", "uus", "msg_id code message"),
    9: ("Register", "ulll", "req_id rpcs topics hooks"),
    10: ("StreamOpen", "usobsuu", "stream_id service edge_id meta addr window timeout_ms"),
    11: ("StreamAccept", "uu", "stream_id window"),
    12: ("StreamData", "ub", "stream_id data"),
    13: ("StreamCredit", "uu", "stream_id amount"),
    14: ("StreamEnd", "u", "stream_id"),
    15: ("StreamReset", "uus", "stream_id code message"),
    16: ("Ping", "u", "nonce"),
    17: ("Pong", "u", "nonce"),
    18: ("GoAway", "uso", "code message retry_after_ms"),  # version 1: "us"
}

#: what each schema kind must be declared as in the dataclass
ANNOTATION = {"u": "int", "o": "int | None", "s": "str", "b": "bytes", "l": "tuple[str, ...]", "n": "float"}


def test_frame_table_is_pinned() -> None:
    got = {
        t: (cls.__name__, cls.SCHEMA, " ".join(f.name for f in fields(cls)))
        for t, cls in FRAME_TYPES.items()
    }
    assert got == TABLE


@pytest.mark.parametrize("cls", list(FRAME_TYPES.values()), ids=lambda c: c.__name__)
def test_schema_matches_the_declared_field_types(cls) -> None:
    assert [f.type for f in fields(cls)] == [ANNOTATION[k] for k in cls.SCHEMA]


def test_frame_layout_is_a_big_endian_length_then_a_msgpack_array() -> None:
    frame = encode_frame(Request(7, "echo", b"hi", 5000))
    (length,) = struct.unpack(">I", frame[:4])
    assert HEADER_SIZE == 4 and HEADER.format == ">I"
    assert length == len(frame) - 4
    assert msgpack.unpackb(frame[4:], raw=False) == [4, 7, "echo", b"hi", 5000, None, 0]
    # bytes travel as bin (0xc4), str as str (0xa4 = fixstr of 4), nil as 0xc0
    assert frame[4:] == bytes.fromhex("97 04 07 a4 65 63 68 6f c4 02 68 69 cd 13 88 c0 00")


def test_floats_travel_as_float64() -> None:
    body = encode_body(Welcome(1, 2, 15.5, 3, 4))
    assert bytes.fromhex("cb402f000000000000") in body


@pytest.mark.parametrize(
    "body",
    [
        "92 10 cf 0000000000000001",  # uint64 holding 1
        "92 10 d0 01",  # int8 holding 1
        "92 10 d3 0000000000000001",  # int64 holding 1
        "92 cc 10 01",  # the type as uint8
        "dc 0002 10 01",  # array16
    ],
)
def test_any_msgpack_int_encoding_of_a_non_negative_value_is_accepted(body: str) -> None:
    assert decode_body(bytes.fromhex(body.replace(" ", ""))) == Ping(1)


def test_str8_and_bin16_are_accepted_for_short_values() -> None:
    body = bytes.fromhex("97 04 01 d9 01 6d c5 0001 78 00 c0 00".replace(" ", ""))
    assert decode_body(body) == Request(1, "m", b"x", 0)


def test_float32_is_accepted_for_a_number_and_ints_too() -> None:
    body = msgpack.packb([2, 1, 2, 0.5, 3, 4], use_single_float=True)
    assert decode_body(body) == Welcome(1, 2, 0.5, 3, 4)
    assert decode_body(msgpack.packb([2, 1, 2, 15, 3, 4])).heartbeat_interval == 15


@pytest.mark.parametrize(
    "obj",
    [
        [12, 1, "text"],  # str where bin is required
        [4, 1, b"m", b"", 0, None, 0],  # bin where str is required
        [4, 1, "m", b"", 0, -1, 0],  # negative optional id
        [4, 1, "m", b"", 0, None, None],  # nil where not optional
        [9, 1, ["a", 1], [], []],  # non-str in a list of str
        [9, 1, "a", [], []],  # str where a list is required
        [2, 1, 2, -1.0, 3, 4],  # negative number
        [2, 1, 2, float("nan"), 3, 4],  # NaN
        [2, 1, 2, "15", 3, 4],  # str for a number
        [16, False],  # bool is not an int
    ],
)
def test_wrongly_typed_fields_are_rejected(obj: list) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_body(msgpack.packb(obj))


def test_invalid_utf8_in_a_str_is_rejected() -> None:
    good = bytes.fromhex("94 0f 01 01 a1 61")  # StreamReset(1, 1, "a")
    assert decode_body(good).message == "a"
    with pytest.raises(RemoteProtocolError):
        decode_body(good[:-1] + b"\xff")  # the same frame with a lone 0xff byte as text


def test_a_memoryview_body_decodes() -> None:
    frame = encode_frame(StreamData(3, b"abc"))
    assert decode_body(memoryview(frame)[4:]) == StreamData(3, b"abc")


@settings(max_examples=300, deadline=None)
@given(any_event)
def test_every_event_round_trips_through_the_codec(event) -> None:
    frame = encode_frame(event)
    assert HEADER.unpack_from(frame)[0] == len(frame) - HEADER_SIZE
    decoded = decode_body(frame[HEADER_SIZE:])
    assert decoded == event
    assert type(decoded) is type(event)
    for f in fields(event):
        assert type(getattr(decoded, f.name)) is type(getattr(event, f.name))


@pytest.mark.parametrize("cls", [Refuse, GoAway])
def test_version_1_forms_of_refuse_and_goaway(cls) -> None:
    """Version 2 added ``retry_after_ms``: encoded for a version-1 peer it is left
    out, and a 2-field frame (an older gateway's) decodes with it None."""
    event = cls(17, "kicked", 3000)
    assert msgpack.unpackb(encode_body(event)) == [cls.TYPE, 17, "kicked", 3000]
    v1 = encode_body(event, version=1)
    assert msgpack.unpackb(v1) == [cls.TYPE, 17, "kicked"]
    assert decode_body(v1) == cls(17, "kicked", None)
    assert decode_body(encode_body(cls(17, "kicked"))) == cls(17, "kicked", None)
    with pytest.raises(RemoteProtocolError):
        decode_body(msgpack.packb([cls.TYPE, 17]))


# -- the receive checks ------------------------------------------------------------------------

#: what msgpack can hand the decoder for one field
_DECODED_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
    st.binary(max_size=4), st.text(max_size=4), st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(codec.FRAME_TYPES)), st.data())
def test_receive_checks_agree_with_the_schema(type_number: int, data: st.DataObject) -> None:
    """The decoder checks a frame with one compiled walk over its schema's kind codes;
    it must accept exactly the field lists the schema's type table accepts."""
    cls, codes, _, _ = codec._FRAMES[type_number]
    schema = codec._SCHEMAS[cls]
    size = data.draw(st.sampled_from([schema.size, schema.size - 1, schema.size + 1]))
    fields = [type_number, *data.draw(st.lists(_DECODED_VALUES, min_size=max(size, 0), max_size=max(size, 0)))]
    if data.draw(st.booleans()):  # half the time, fields of the right kinds (mostly valid frames)
        fields = [type_number, *(data.draw(_of_kind(k)) for k in cls.SCHEMA)]
    expected = len(fields) == schema.size + 1 and schema.valid(fields, schema.recv_types)
    assert codec.fits(fields, codes) == expected, fields


def _of_kind(kind: str) -> st.SearchStrategy:
    return {
        "u": st.integers(-2, 2**64 - 1), "o": st.one_of(st.none(), st.integers(-2, 2**64 - 1)),
        "b": st.binary(max_size=4), "s": st.text(max_size=4),
        "l": st.lists(st.one_of(st.text(max_size=3), st.just(1)), max_size=3),
        "n": st.one_of(st.floats(allow_nan=True), st.integers(-2, 10)),
    }[kind]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(codec.FRAME_TYPES)), st.data())
def test_event_of_builds_what_the_class_builds(type_number: int, data: st.DataObject) -> None:
    """``event_of`` sets the slots itself (no dataclass ``__init__``): the same event,
    equal and hashed alike, and still frozen."""
    cls = codec.FRAME_TYPES[type_number]
    values = [data.draw(_of_kind(k)) for k in cls.SCHEMA]
    values = [tuple(v) if k == "l" else v for k, v in zip(cls.SCHEMA, values)]
    built = codec.event_of([type_number, *values])
    assert type(built) is cls
    assert built == cls(*values) and hash(built) == hash(cls(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.__setattr__(dataclasses.fields(cls)[0].name, None)
