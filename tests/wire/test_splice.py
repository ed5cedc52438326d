"""End-to-end flow control through a splicing gateway, with four machines and no sockets.

An edge's stream and a service's stream are joined by a gateway that relays every
stream frame at once and unchanged (only the id translated), as PROTOCOL.md §8.4/§9
describe. Whatever the interleaving, the relay never has to send beyond a window
(the gateway's own machine would raise LocalProtocolError), no end ever sees its peer
exceed a window, and every byte arrives in order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from frontier.wire import NEED_DATA, Connection
from frontier.wire.events import StreamAccept, StreamCredit, StreamData, StreamEnd, StreamOpen

from .helpers import open_pair

EDGE_SID, SERVICE_SID = 1, 2

action = st.one_of(
    st.tuples(st.just("data"), st.sampled_from(["edge", "service"]), st.integers(0, 50)),
    st.tuples(st.just("credit"), st.sampled_from(["edge", "service"]), st.booleans()),
    st.tuples(st.just("deliver"), st.sampled_from(["e>g", "g>e", "s>g", "g>s"]), st.integers(1, 40)),
)


class Splice:
    """edge <-> gateway(edge leg) | gateway(service leg) <-> service."""

    def __init__(self, edge_window: int, service_window: int) -> None:
        self.edge_pair, self.service_pair = open_pair(), open_pair()
        self.edge, self.g_edge = self.edge_pair.client, self.edge_pair.gateway
        self.service, self.g_service = self.service_pair.client, self.service_pair.gateway
        self.pipes = {"e>g": bytearray(), "g>e": bytearray(), "s>g": bytearray(), "g>s": bytearray()}
        self.receivers = {"e>g": self.g_edge, "g>e": self.edge, "s>g": self.g_service, "g>s": self.service}
        self.sent = {"edge": bytearray(), "service": bytearray()}
        self.got = {"edge": bytearray(), "service": bytearray()}  # keyed by the receiving end
        self.unread = {"edge": 0, "service": 0}
        self.accept_window = 0
        # open: edge -> gateway -> service, accept back
        self.pipes["e>g"] += self.edge.send(StreamOpen(EDGE_SID, service="svc", window=edge_window))
        self.accept_window = service_window
        self.settle()  # the gateway relays the open, the service accepts, the accept is relayed back
        assert self.edge.send_window(EDGE_SID) == service_window

    def end_of(self, name: str) -> Connection:
        return self.edge if name == "edge" else self.service

    def pipe_from(self, name: str) -> bytearray:
        return self.pipes["e>g" if name == "edge" else "s>g"]

    def relay(self, leg: str, event) -> None:
        """The gateway's splice: forward a stream frame to the other leg, id translated."""
        if leg == "e>g":
            out, pipe, sid = self.g_service, "g>s", SERVICE_SID
        else:
            out, pipe, sid = self.g_edge, "g>e", EDGE_SID
        kind = type(event)
        if kind is StreamOpen:
            fwd = StreamOpen(sid, service=event.service, edge_id=42, window=event.window)
        elif kind is StreamAccept:
            fwd = StreamAccept(sid, event.window)
        elif kind is StreamData:
            fwd = StreamData(sid, event.data)
        elif kind is StreamCredit:
            fwd = StreamCredit(sid, event.amount)
        else:
            fwd = kind(sid)
        self.pipes[pipe] += out.send(fwd)

    def deliver(self, leg: str, n: int) -> None:
        pipe = self.pipes[leg]
        chunk = bytes(pipe[:n])
        del pipe[:n]
        if not chunk:
            return
        receiver = self.receivers[leg]
        receiver.receive_data(chunk)
        while (event := receiver.next_event()) is not NEED_DATA:
            if leg in ("e>g", "s>g"):
                self.relay(leg, event)
            elif type(event) is StreamOpen:  # the service accepts what the gateway opened
                self.pipes["s>g"] += self.service.send(StreamAccept(event.stream_id, self.accept_window))
            elif type(event) is StreamData:
                end = "edge" if leg == "g>e" else "service"
                self.got[end] += event.data
                self.unread[end] += len(event.data)

    def settle(self) -> None:
        while any(self.pipes.values()):
            for leg in self.pipes:
                self.deliver(leg, len(self.pipes[leg]))


@settings(max_examples=150, deadline=None)
@given(
    edge_window=st.integers(0, 64), service_window=st.integers(0, 64),
    actions=st.lists(action, max_size=60),
)
def test_relaying_frames_unchanged_keeps_every_window(edge_window: int, service_window: int, actions) -> None:
    sp = Splice(edge_window, service_window)
    sids = {"edge": EDGE_SID, "service": SERVICE_SID}
    counter = 0
    for act in actions:
        if act[0] == "data":
            _, who, n = act
            conn = sp.end_of(who)
            n = min(n, conn.send_window(sids[who]))
            data = bytes((counter + i) % 256 for i in range(n))
            counter += n
            sp.pipe_from(who).extend(conn.send(StreamData(sids[who], data)))
            sp.sent[who] += data
        elif act[0] == "credit":
            _, who, everything = act
            amount = sp.unread[who] if everything else sp.unread[who] // 2
            if amount:
                sp.pipe_from(who).extend(sp.end_of(who).send(StreamCredit(sids[who], amount)))
                sp.unread[who] -= amount
        else:
            _, leg, n = act
            sp.deliver(leg, n)
        # the gateway holds no more of a direction's data than the far reader's window
        assert sp.g_service.send_window(SERVICE_SID) >= 0 and sp.g_edge.send_window(EDGE_SID) >= 0
    sp.settle()
    assert sp.got["service"] == sp.sent["edge"]
    assert sp.got["edge"] == sp.sent["service"]
    # quiescent: each writer's window is exactly its far reader's remaining window
    assert sp.edge.send_window(EDGE_SID) == service_window + _credited(sp, "service") - len(sp.sent["edge"])
    assert sp.service.send_window(SERVICE_SID) == edge_window + _credited(sp, "edge") - len(sp.sent["service"])
    # and both ends can finish the stream cleanly through the relay
    sp.pipes["e>g"] += sp.edge.send(StreamEnd(EDGE_SID))
    sp.pipes["s>g"] += sp.service.send(StreamEnd(SERVICE_SID))
    sp.settle()
    assert sp.edge.open_streams == sp.g_edge.open_streams == sp.g_service.open_streams == sp.service.open_streams == 0


def _credited(sp: Splice, who: str) -> int:
    """Credit ``who`` has granted so far: what it received minus what it has not credited."""
    return len(sp.got[who]) - sp.unread[who]
