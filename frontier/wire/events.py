"""The frames of the frontier protocol, as frozen events.

Each event class is one frame type. On the wire a frame body is a msgpack array
``[TYPE, field1, field2, ...]`` in the order the fields are declared here; ``SCHEMA``
lists each field's kind so the decoder can check a frame before anything trusts it:

``u`` unsigned int, ``o`` unsigned int or nil, ``s`` str, ``b`` bytes,
``l`` array of str (decoded to a tuple), ``n`` number (int or float).

See ``sdk/PROTOCOL.md`` for the meaning of every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

#: the protocol version this code speaks (and sends in ``Hello``)
PROTOCOL_VERSION = 2
#: versions a gateway accepts in ``Hello``; version 1 lacks ``retry_after_ms`` in
#: ``Refuse`` and ``GoAway`` (see ``Event.V1_SCHEMA``)
SUPPORTED_VERSIONS = (1, 2)

#: roles a client announces in ``Hello``
ROLE_SERVICE = "service"
ROLE_EDGE = "edge"

#: names a service may put in ``Hello.hooks`` / ``Register.hooks``
HOOK_GET_EDGE_ID = "get_edge_id"
HOOK_EDGE_ONLINE = "edge_online"
HOOK_EDGE_OFFLINE = "edge_offline"
HOOKS = (HOOK_GET_EDGE_ID, HOOK_EDGE_ONLINE, HOOK_EDGE_OFFLINE)

#: the gateway calls a service's hooks as ``Request``s with these reserved methods;
#: user methods may not start with ``$``
HOOK_METHOD_PREFIX: Final = "$"

#: a ``StreamOpen.service`` starting with this comes from the gateway itself (the HTTP
#: ingress): the rest names a target the edge exposes (``Edge(..., expose=...)``).
#: Service names may not start with ``$``, so no service can send one.
EXPOSE_PREFIX = "$expose:"

#: an id field (a call's, a publish's, the gateway's own for what it forwards) as the
#: relay holds it: the int object the decoder made, passed along as it is. Annotated
#: ``int``, compiled code (frontier/compiled.py) unboxes it into a machine word and
#: makes a fresh int object at every dict key and frame field it goes into (up to six
#: per routed call, each then found in a dict by value rather than by identity).
WireId = Any


class Event:
    """Base of every frame event. ``TYPE`` is its wire type number."""

    __slots__ = ()
    TYPE: ClassVar[int] = 0
    SCHEMA: ClassVar[str] = ""
    #: the frame's fields in protocol version 1, when they differ (a prefix of ``SCHEMA``)
    V1_SCHEMA: ClassVar[str | None] = None


@dataclass(frozen=True, slots=True)
class Hello(Event):
    """Client -> gateway, first frame: who I am and what I offer."""

    TYPE: ClassVar[int] = 1
    SCHEMA: ClassVar[str] = "usslllbob"
    version: int
    role: str
    name: str = ""  #: service name (services only; may be empty)
    topics: tuple[str, ...] = ()  #: topics a service receives
    rpcs: tuple[str, ...] = ()  #: methods registered so far (replayed on reconnect)
    hooks: tuple[str, ...] = ()  #: service hooks (``HOOKS``)
    meta: bytes = b""  #: edge meta
    edge_id: int | None = None  #: the id an edge wants (or had before a reconnect)
    credentials: bytes = b""


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """Gateway -> client: accepted; the id assigned and the limits in force."""

    TYPE: ClassVar[int] = 2
    SCHEMA: ClassVar[str] = "uunuu"
    id: int  #: edge id, or the service connection's id
    max_frame_size: int
    heartbeat_interval: float  #: seconds between the client's pings
    stream_window: int  #: default stream receive window in bytes
    max_inflight: int  #: calls + publishes the gateway accepts at once from this client


@dataclass(frozen=True, slots=True)
class Refuse(Event):
    """Gateway -> client: the handshake is refused; the gateway closes.
    ``retry_after_ms`` (version 2): try again no sooner than this (a ban that ends)."""

    TYPE: ClassVar[int] = 3
    SCHEMA: ClassVar[str] = "uso"
    V1_SCHEMA: ClassVar[str | None] = "us"
    code: int
    message: str = ""
    retry_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Request(Event):
    """An RPC call. ``edge_id`` is the target edge (service -> gateway) or the calling
    edge (gateway -> service). ``stream_id`` non-zero: the call rides that stream."""

    TYPE: ClassVar[int] = 4
    SCHEMA: ClassVar[str] = "usbuou"
    call_id: int
    method: str
    data: bytes
    timeout_ms: int
    edge_id: int | None = None
    stream_id: int = 0


@dataclass(frozen=True, slots=True)
class Response(Event):
    """The answer to a ``Request`` (or ``Register``) with the same id.
    ``code`` 0 is success; otherwise ``message`` says why."""

    TYPE: ClassVar[int] = 5
    SCHEMA: ClassVar[str] = "uubs"
    call_id: int
    code: int = 0
    data: bytes = b""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Cancel(Event):
    """The caller gave up on a ``Request``; the receiver may stop working on it."""

    TYPE: ClassVar[int] = 6
    SCHEMA: ClassVar[str] = "u"
    call_id: int


@dataclass(frozen=True, slots=True)
class Publish(Event):
    """A message that must be acknowledged. ``edge_id`` as in ``Request``."""

    TYPE: ClassVar[int] = 7
    SCHEMA: ClassVar[str] = "usbuou"
    msg_id: int
    topic: str
    data: bytes
    timeout_ms: int
    edge_id: int | None = None
    stream_id: int = 0


@dataclass(frozen=True, slots=True)
class Ack(Event):
    """The receiver's ``done()`` (code 0) or ``error(reason)`` for a ``Publish``."""

    TYPE: ClassVar[int] = 8
    SCHEMA: ClassVar[str] = "uus"
    msg_id: int
    code: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class Register(Event):
    """Client -> gateway: add methods, topics or hooks; answered by a ``Response``."""

    TYPE: ClassVar[int] = 9
    SCHEMA: ClassVar[str] = "ulll"
    req_id: int
    rpcs: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamOpen(Event):
    """Open a stream. Client -> gateway names the target (``service`` for an edge,
    ``edge_id`` for a service); gateway -> client names the opener (``edge_id``,
    ``meta`` and ``addr`` of the edge when a service accepts). ``window`` is the
    opener's receive window."""

    TYPE: ClassVar[int] = 10
    SCHEMA: ClassVar[str] = "usobsuu"
    stream_id: int
    service: str = ""
    edge_id: int | None = None
    meta: bytes = b""
    addr: str = ""
    window: int = 0
    timeout_ms: int = 0


@dataclass(frozen=True, slots=True)
class StreamAccept(Event):
    """The target accepted the stream; ``window`` is its receive window."""

    TYPE: ClassVar[int] = 11
    SCHEMA: ClassVar[str] = "uu"
    stream_id: int
    window: int


@dataclass(frozen=True, slots=True)
class StreamData(Event):
    """Bytes on a stream; costs ``len(data)`` of the sender's window."""

    TYPE: ClassVar[int] = 12
    SCHEMA: ClassVar[str] = "ub"
    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamCredit(Event):
    """The receiver consumed ``amount`` bytes: the sender may send that much more."""

    TYPE: ClassVar[int] = 13
    SCHEMA: ClassVar[str] = "uu"
    stream_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class StreamEnd(Event):
    """The sender will send no more data on this stream (half close)."""

    TYPE: ClassVar[int] = 14
    SCHEMA: ClassVar[str] = "u"
    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset(Event):
    """The stream is aborted (or its open refused) with an error code."""

    TYPE: ClassVar[int] = 15
    SCHEMA: ClassVar[str] = "uus"
    stream_id: int
    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Ping(Event):
    """Liveness probe; the peer answers ``Pong`` with the same nonce."""

    TYPE: ClassVar[int] = 16
    SCHEMA: ClassVar[str] = "u"
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """Answer to ``Ping``."""

    TYPE: ClassVar[int] = 17
    SCHEMA: ClassVar[str] = "u"
    nonce: int


@dataclass(frozen=True, slots=True)
class GoAway(Event):
    """Gateway -> client: no new work here; reconnect elsewhere. With a non-zero code
    other than ``GOING_AWAY`` it announces why the gateway closes the connection;
    ``retry_after_ms`` (version 2) then says when to connect again (a kick that lets
    the client back, a ban that ends), None: not at all."""

    TYPE: ClassVar[int] = 18
    SCHEMA: ClassVar[str] = "uso"
    V1_SCHEMA: ClassVar[str | None] = "us"
    code: int
    message: str = ""
    retry_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PeerClosed(Event):
    """Not a frame: the peer closed the byte stream (``receive_data(b"")``)."""

    TYPE: ClassVar[int] = -1


FRAME_TYPES: dict[int, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Welcome, Refuse, Request, Response, Cancel, Publish, Ack, Register,
        StreamOpen, StreamAccept, StreamData, StreamCredit, StreamEnd, StreamReset,
        Ping, Pong, GoAway,
    )
}
