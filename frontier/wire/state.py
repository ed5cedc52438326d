"""Every rule about which frame may come when, in one place.

Everything that affects a state transition of a connection or a stream lives in the
two tables below; :mod:`frontier.wire.connection` only looks them up. A pair
``(state, who/direction, event type)`` missing from a table is a protocol violation.
"""

from __future__ import annotations

import enum

from .events import (
    Ack, Cancel, Event, GoAway, Hello, Ping, Pong, Publish, Refuse, Register, Request, Response,
    StreamAccept, StreamCredit, StreamData, StreamEnd, StreamOpen, StreamReset, Welcome,
)


class _IdentityEnum(enum.Enum):
    """An enum hashed by identity (its members are singletons): the transition tables
    are looked up with these as keys on every frame, and ``Enum.__hash__`` runs in
    Python."""

    __hash__ = object.__hash__


class Side(_IdentityEnum):
    """Which end of a connection: the dialling client (SDK) or the gateway."""

    CLIENT = "client"
    GATEWAY = "gateway"

    @property
    def other(self) -> "Side":
        """The opposite side."""
        return Side.GATEWAY if self is Side.CLIENT else Side.CLIENT


class ConnState(_IdentityEnum):
    """Life of a connection. ``DRAINING``: the gateway sent ``GoAway``."""

    IDLE = "idle"
    HANDSHAKING = "handshaking"
    OPEN = "open"
    DRAINING = "draining"
    CLOSED = "closed"


IDLE, HANDSHAKING, OPEN, DRAINING, CLOSED = ConnState
CLIENT, GATEWAY = Side

#: frames either side may send once the handshake is done
_DATAPLANE = (
    Request, Response, Cancel, Publish, Ack,
    StreamOpen, StreamAccept, StreamData, StreamCredit, StreamEnd, StreamReset,
    Ping, Pong,
)

#: (state, sender, event type) -> next state
CONNECTION_TRANSITIONS: dict[tuple[ConnState, Side, type[Event]], ConnState] = {
    (IDLE, CLIENT, Hello): HANDSHAKING,
    (IDLE, GATEWAY, Refuse): CLOSED,
    (HANDSHAKING, GATEWAY, Welcome): OPEN,
    (HANDSHAKING, GATEWAY, Refuse): CLOSED,
    (OPEN, GATEWAY, GoAway): DRAINING,
    (DRAINING, GATEWAY, GoAway): DRAINING,
    (OPEN, CLIENT, Register): OPEN,
    (DRAINING, CLIENT, Register): DRAINING,
}
for _state in (OPEN, DRAINING):
    for _side in Side:
        for _ev in _DATAPLANE:
            CONNECTION_TRANSITIONS[(_state, _side, _ev)] = _state
del _state, _side, _ev

#: the same table split by (state, sender): event type -> next state, so the hot path
#: does one lookup keyed by a type (enum members hash in Python, types in C)
TRANSITIONS_BY_STATE: dict[tuple[ConnState, Side], dict[type[Event], ConnState]] = {
    (state, side): {ev: nxt for (s, sd, ev), nxt in CONNECTION_TRANSITIONS.items() if s is state and sd is side}
    for state in ConnState for side in Side
}


class StreamState(_IdentityEnum):
    """Life of one stream, seen from one end."""

    OPENING_LOCAL = "opening-local"  #: we sent StreamOpen, waiting for accept
    OPENING_REMOTE = "opening-remote"  #: we got StreamOpen, have not accepted yet
    OPEN = "open"
    LOCAL_ENDED = "local-ended"  #: we sent StreamEnd; we may still receive
    REMOTE_ENDED = "remote-ended"  #: they sent StreamEnd; we may still send
    CLOSED = "closed"


class Direction(_IdentityEnum):
    """Whether a stream frame is being sent or was received."""

    SEND = "send"
    RECV = "recv"


SEND, RECV = Direction
S = StreamState

#: (stream state or None for a new id, direction, event type) -> next state.
#: ``StreamReset`` is allowed from every state and always leads to CLOSED.
STREAM_TRANSITIONS: dict[tuple[StreamState | None, Direction, type], StreamState] = {
    (None, SEND, StreamOpen): S.OPENING_LOCAL,
    (None, RECV, StreamOpen): S.OPENING_REMOTE,
    (S.OPENING_LOCAL, RECV, StreamAccept): S.OPEN,
    (S.OPENING_REMOTE, SEND, StreamAccept): S.OPEN,
    (S.OPEN, SEND, StreamData): S.OPEN,
    (S.OPEN, RECV, StreamData): S.OPEN,
    (S.REMOTE_ENDED, SEND, StreamData): S.REMOTE_ENDED,
    (S.LOCAL_ENDED, RECV, StreamData): S.LOCAL_ENDED,
    (S.OPEN, SEND, StreamEnd): S.LOCAL_ENDED,
    (S.OPEN, RECV, StreamEnd): S.REMOTE_ENDED,
    (S.REMOTE_ENDED, SEND, StreamEnd): S.CLOSED,
    (S.LOCAL_ENDED, RECV, StreamEnd): S.CLOSED,
}
# credit may flow both ways while either direction still carries data
for _st in (S.OPEN, S.LOCAL_ENDED, S.REMOTE_ENDED):
    for _dir in Direction:
        STREAM_TRANSITIONS[(_st, _dir, StreamCredit)] = _st
for _st in S:
    if _st is not S.CLOSED:
        for _dir in Direction:
            STREAM_TRANSITIONS[(_st, _dir, StreamReset)] = S.CLOSED
del _st, _dir

#: the frames that belong to a stream (carry ``stream_id`` as their own subject)
STREAM_EVENTS = (StreamOpen, StreamAccept, StreamData, StreamCredit, StreamEnd, StreamReset)

#: largest window a peer may grant; more is a protocol error (as in HTTP/2)
MAX_WINDOW = 2**31 - 1
