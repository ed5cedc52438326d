"""Frame codec: ``[4-byte big-endian body length][msgpack body]``.

One frame is packed or unpacked at a time (no streaming ``Unpacker`` kept per
connection). :func:`decode_body` checks the frame against its event's schema, so any
garbage raises :class:`RemoteProtocolError` and nothing else.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import fields
from operator import attrgetter
from typing import Any, Callable, Final, cast

import msgpack

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError, UnsupportedVersion
from .events import FRAME_TYPES, PROTOCOL_VERSION, SUPPORTED_VERSIONS, Event, Hello

HEADER: Final = struct.Struct(">I")
HEADER_SIZE: Final = 4  # HEADER.size
#: the largest length a header can announce
MAX_LENGTH = 2**32 - 1
#: integers on the wire are unsigned 64-bit at most
_U64 = 2**64

#: ``HEADER``'s methods, bound once (a method looked up on each call costs compiled
#: code a few hundred instructions per frame)
pack_header: Final = HEADER.pack
unpack_header_from: Final = HEADER.unpack_from
#: one packer reused for every frame (``packb`` makes one, with a 1 MiB buffer, per
#: call): packing the plain types of a frame runs no Python code, so under the GIL no
#: other thread can interleave with it
_pack: Final = msgpack.Packer(autoreset=True).pack
_unpackb: Final = msgpack.unpackb
_VERSIONS = " and ".join(map(str, SUPPORTED_VERSIONS))


def _getter(cls: Any) -> Callable[[Event], tuple]:  # a dataclass of events.py
    names = [f.name for f in fields(cls)]
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda ev: (one(ev),)
    return attrgetter(*names)


def _slot_setters(cls: Any) -> tuple[Callable[[Event, Any], None], ...]:  # a dataclass of events.py
    return tuple(getattr(cls, f.name).__set__ for f in fields(cls))


_GETTERS: dict[type[Event], Callable[[Event], tuple]] = {cls: _getter(cls) for cls in FRAME_TYPES.values()}

#: Python types a decoded field of each schema kind may have (msgpack never yields
#: ints outside [-2**63, 2**64), so only the sign is left to check)
_RECV_TYPES = {"u": (int,), "b": (bytes,), "s": (str,), "o": (int, type(None)), "l": (list,), "n": (int, float)}
#: what we accept when sending (codes are ``ErrorCode`` members; lists may be tuples)
_SEND_TYPES = {**_RECV_TYPES, "u": (int, ErrorCode), "o": (int, ErrorCode, type(None)), "l": (tuple, list)}


class _Schema:
    """An event class's schema compiled for one set lookup per frame plus a few
    range checks, instead of a Python call per field. It checks field lists with the
    frame type in front (``[TYPE, field, ...]``)."""

    __slots__ = ("size", "recv_types", "send_types", "ints", "lists", "numbers")

    def __init__(self, kinds: str) -> None:
        self.size = len(kinds)
        self.recv_types = frozenset(itertools.product((int,), *(_RECV_TYPES[k] for k in kinds)))
        self.send_types = frozenset(itertools.product((int,), *(_SEND_TYPES[k] for k in kinds)))
        # positions in the field list (the type is at 0)
        self.ints = tuple(i + 1 for i, k in enumerate(kinds) if k in "uo")
        self.lists = tuple(i + 1 for i, k in enumerate(kinds) if k == "l")
        self.numbers = tuple(i + 1 for i, k in enumerate(kinds) if k == "n")

    def valid(self, fields: Any, types: frozenset) -> bool:
        """Do ``fields`` (a list or tuple, the type first) fit the schema? (Lists are
        not converted.)"""
        if tuple(map(type, fields)) not in types:
            return False
        for i in self.ints:
            v = fields[i]
            if v is not None and not 0 <= v < _U64:  # (ints are exact: no NaN here)
                return False
        for i in self.lists:
            if not all(type(x) is str for x in fields[i]):
                return False
        for i in self.numbers:
            if not fields[i] >= 0:  # also refuses NaN
                return False
        return True


#: schema kinds as the small ints :func:`fits` switches on (``Final``: compiled, constants)
_U: Final = 0
_O: Final = 1
_B: Final = 2
_S: Final = 3
_L: Final = 4
_N: Final = 5
_KIND_CODES = {"u": _U, "o": _O, "b": _B, "s": _S, "l": _L, "n": _N}


def kind_codes(kinds: str) -> tuple[int, ...]:
    """A schema string as the codes :func:`fits` takes."""
    return tuple(_KIND_CODES[k] for k in kinds)


def fits(f: list, codes: tuple[int, ...]) -> bool:
    """Does a received field list ``[TYPE, field, ...]`` have exactly one field per
    schema kind in ``codes`` (see :func:`kind_codes`), each of its kind? One call per
    frame with no Python call per field: compiled (frontier/compiled.py), a few
    hundred instructions. Same verdicts as ``_Schema.valid`` with ``recv_types`` and
    the right length (tests/wire/test_codec.py holds it to that). msgpack yields no
    int past 2**64 and no bool as an int; NaN fails ``>= 0``."""
    if len(f) != len(codes) + 1:
        return False
    i = 0
    for code in codes:
        i += 1
        v = f[i]
        t = type(v)
        if code == _U:
            if t is not int or cast(int, v) < 0:  # (cast: compiled, a native comparison)
                return False
        elif code == _O:
            if v is not None and (t is not int or cast(int, v) < 0):
                return False
        elif code == _B:
            if t is not bytes:
                return False
        elif code == _S:
            if t is not str:
                return False
        elif code == _L:
            if t is not list:
                return False
            for x in v:
                if type(x) is not str:
                    return False
        elif t is not int and t is not float or not v >= 0:  # _N
            return False
    return True


_SCHEMAS: dict[type[Event], _Schema] = {cls: _Schema(cls.SCHEMA) for cls in FRAME_TYPES.values()}
#: a frame type's entry in :data:`_FRAMES`: its event class, its schema's kind codes for
#: :func:`fits`, whether it has string arrays, and the ``__set__`` of each of its
#: fields' slots in order (for :func:`event_of`)
_Frame = tuple[type[Event], tuple[int, ...], bool, tuple[Callable[[Event, Any], None], ...]]
#: indexed by type number, None for a number no frame has (a tuple: compiled, indexing
#: it is a bounds check, where a dict lookup hashes and compares)
_FRAMES: Final[tuple[_Frame | None, ...]] = tuple(
    (cls, kind_codes(cls.SCHEMA), "l" in cls.SCHEMA, _slot_setters(cls)) if cls is not None else None
    for cls in (FRAME_TYPES.get(t) for t in range(max(FRAME_TYPES) + 1))
)
_new_object: Final = object.__new__
#: frames whose version-1 form has fewer fields: that many, padded with the defaults
_V1_SIZES: dict[type[Event], int] = {cls: len(cls.V1_SCHEMA) for cls in FRAME_TYPES.values() if cls.V1_SCHEMA}


def encode_body(event: Event, check: bool = True, version: int = PROTOCOL_VERSION) -> bytes:
    """Pack an event into a msgpack frame body (no header).

    Raises ``LocalProtocolError`` for anything the peer's decoder would refuse, so
    the fault is reported on the side that made it. ``check=False`` skips the field
    check (not the encoding errors) for a sender whose events are built only from
    already-checked frames and its own ids, as the gateway's are. ``version`` is the
    peer's protocol version: for version 1 the fields version 1 lacks are left out."""
    getter = _GETTERS.get(type(event))
    if getter is None:
        raise LocalProtocolError(f"{type(event).__name__} is not a frame")
    values = getter(event)
    schema = _SCHEMAS[type(event)]
    if check and not schema.valid((event.TYPE, *values), schema.send_types):
        for kind, value in zip(event.SCHEMA, values):  # slow path: a precise verdict and message
            if not _sendable(kind, value):
                raise LocalProtocolError(f"{type(event).__name__} has a field of the wrong type: {value!r:.60}")
    if version == 1 and type(event) in _V1_SIZES:
        values = values[:_V1_SIZES[type(event)]]
    try:
        return _pack((event.TYPE, *values))
    except (ValueError, TypeError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise LocalProtocolError(f"{type(event).__name__} cannot be encoded: {exc}") from None


def _is_uint(value: Any) -> bool:
    """An unsigned 64-bit int (``IntEnum`` codes count; ``bool`` does not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _U64


def _sendable(kind: str, value: Any) -> bool:
    """Would the peer accept ``value`` for a field of this schema kind?"""
    if kind == "u":
        return _is_uint(value)
    if kind == "b":
        return type(value) is bytes
    if kind == "s":
        return type(value) is str
    if kind == "o":
        return value is None or _is_uint(value)
    if kind == "l":
        return type(value) in (tuple, list) and all(type(x) is str for x in value)
    if kind == "n":
        return type(value) in (int, float) and value >= 0
    return False


def encode_frame(event: Event, check: bool = True, version: int = PROTOCOL_VERSION) -> bytes:
    """Pack an event into a whole frame: header and body (``check``, ``version``: see
    :func:`encode_body`)."""
    body = encode_body(event, check, version)
    return pack_header(len(body)) + body


def decode_fields(body: bytes | bytearray | memoryview) -> list:
    """Unpack and check one frame body into its field list ``[TYPE, field, ...]`` (a
    version-1 frame padded with the defaults, string arrays as tuples): what
    :func:`decode_body` builds its event from, for a relay that needs no event object.
    Raise ``RemoteProtocolError`` on anything wrong."""
    try:
        # (msgpack >= 1.0's defaults: str as str, arrays as lists, map keys str or bytes)
        obj = _unpackb(body)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise RemoteProtocolError(f"undecodable frame: {exc.__class__.__name__}") from None
    if type(obj) is not list or not obj or type(obj[0]) is not int:
        raise RemoteProtocolError("a frame must be an array starting with its type")
    kind: int = obj[0]
    known = _FRAMES[kind] if 0 <= kind < len(_FRAMES) else None
    if known is None:
        raise RemoteProtocolError(f"unknown frame type {kind}")
    cls, codes, has_lists, _ = known
    if not has_lists and fits(obj, codes):  # the usual frame: one check, done
        return obj
    if cls is Hello and len(obj) > 1 and type(obj[1]) is int and obj[1] not in SUPPORTED_VERSIONS:
        # before the shape: a future version may carry other fields
        raise UnsupportedVersion(f"protocol version {obj[1]} is not supported (this end speaks {_VERSIONS})")
    schema = _SCHEMAS[cls]
    size = len(obj) - 1
    if size != schema.size:
        if size != _V1_SIZES.get(cls, -1):
            raise RemoteProtocolError(f"{cls.__name__} needs {schema.size} fields, got {size}")
        obj += [None] * (schema.size - size)  # the version-1 form (from an older gateway)
    if not fits(obj, codes):
        raise RemoteProtocolError(f"{cls.__name__} has a field of the wrong type")
    for i in schema.lists:
        obj[i] = tuple(obj[i])
    return obj


def decode_body(body: bytes | bytearray | memoryview) -> Event:
    """Unpack and check one frame body; raise ``RemoteProtocolError`` on anything wrong."""
    return event_of(decode_fields(body))


def event_of(fields: list | tuple) -> Event:
    """The event for a field list ``[TYPE, field, ...]`` (one already checked).

    Built without the dataclass ``__init__``: a frozen dataclass sets every field with
    a Python-level ``object.__setattr__`` (a 9-field ``Hello`` cost 14,600
    instructions); here each slot is set through its member descriptor, as
    ``object.__setattr__`` does, from compiled code. The event is the same, and frozen."""
    frame = _FRAMES[fields[0]]
    assert frame is not None, fields[0]  # (a checked field list: a known type)
    cls, _, _, setters = frame
    if len(fields) != len(setters) + 1:  # fewer fields: the class fills in its defaults
        return cls(*fields[1:])
    event = _new_object(cls)
    i = 0
    for setter in setters:
        i += 1
        setter(event, fields[i])
    return event


def fields_of(event: Event) -> list:
    """The field list ``[TYPE, field, ...]`` of an event (the inverse of :func:`event_of`)."""
    return [event.TYPE, *_GETTERS[type(event)](event)]


def pack_fields(fields: tuple | list) -> bytes:
    """Pack a field tuple ``(TYPE, field, ...)`` into a frame body with no check at all:
    for a sender whose tuples are built only from checked frames and its own ids (the
    gateway's lean relay; see ``Connection.send_fields``). The same bytes as
    :func:`encode_body` of the same event. Raises ``LocalProtocolError`` if a value
    cannot be packed."""
    try:
        return _pack(fields)
    except (ValueError, TypeError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise LocalProtocolError(f"{FRAME_TYPES[fields[0]].__name__} cannot be encoded: {exc}") from None
