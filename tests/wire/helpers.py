"""Drive a client and a gateway :class:`Connection` against each other, with no sockets.

Modelled on h11's ``tests/helpers.py``. Two rules every helper here keeps:
``send()`` may return ``b""`` (nothing to transmit), and ``receive_data(b"")`` means
end of file, so empty bytes are never fed as data.
"""

from __future__ import annotations

from typing import Iterable

from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.codec import encode_frame
from frontier.wire.events import (
    PROTOCOL_VERSION, ROLE_EDGE, Event, Hello, PeerClosed, StreamAccept, StreamOpen, Welcome,
)

CLIENT, GATEWAY = Side.CLIENT, Side.GATEWAY

#: a Welcome with small, round limits used by most tests
WELCOME = Welcome(id=42, max_frame_size=1 << 16, heartbeat_interval=15.0, stream_window=1024, max_inflight=64)


def drain(conn: Connection) -> list[Event]:
    """Every event ``conn`` can produce from what it has buffered (stops at ``PeerClosed``)."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if type(event) is PeerClosed:
            return events


def feed(conn: Connection, data: bytes, chunk: int | None = None) -> list[Event]:
    """Give ``data`` to ``conn`` (in pieces of ``chunk`` bytes if given) and drain it."""
    events: list[Event] = []
    if chunk is None:
        chunk = max(len(data), 1)
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i:i + chunk])  # never b"": the range skips empty data
        events += drain(conn)
    return events


def frames(*events: Event) -> bytes:
    """Raw frames built by the codec alone, bypassing any state check (to play a rogue peer)."""
    return b"".join(encode_frame(ev) for ev in events)


class Pair:
    """A client and a gateway connection joined by an in-memory pipe."""

    def __init__(self, **kwargs: int) -> None:
        self.client = Connection(CLIENT, **kwargs)
        self.gateway = Connection(GATEWAY, **kwargs)

    def conn(self, side: Side) -> Connection:
        """The machine of one side."""
        return self.client if side is CLIENT else self.gateway

    def send(self, side: Side, *events: Event) -> list[Event]:
        """``side`` sends ``events``; return what the other side receives (not asserted)."""
        sender, receiver = self.conn(side), self.conn(side.other)
        data = b"".join(sender.send(ev) for ev in events)
        return feed(receiver, data)

    def exchange(self, side: Side, *events: Event) -> None:
        """``side`` sends ``events`` and the other side must receive exactly them."""
        got = self.send(side, *events)
        assert got == list(events)

    def handshake(self, hello: Hello | None = None, welcome: Welcome = WELCOME) -> "Pair":
        """Run Hello / Welcome; both machines end OPEN."""
        self.exchange(CLIENT, hello or Hello(PROTOCOL_VERSION, ROLE_EDGE))
        self.exchange(GATEWAY, welcome)
        return self

    def open_stream(self, opener: Side, window: int = 100, accept_window: int = 100, **fields: object) -> int:
        """Open and accept a stream started by ``opener``; return its id."""
        sid = self.conn(opener).new_stream_id()
        self.exchange(opener, StreamOpen(sid, window=window, **fields))
        self.exchange(opener.other, StreamAccept(sid, accept_window))
        return sid


def open_pair(**kwargs: int) -> Pair:
    """A pair that has completed the handshake."""
    return Pair(**kwargs).handshake()


def chunked(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates ignored) into non-empty pieces."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
