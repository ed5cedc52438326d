"""Heartbeats are checked by the process's deadline sweeper, not by a timed ``recv``:
against a scripted gateway (a real socket, the sans-io machine on the gateway side)
the SDK pings when it has sent nothing for an interval, and ends a connection whose
gateway went silent for three intervals, failing what waits on it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from frontier.sdk import ConnectionClosed, Edge, FrontierError, Timeout
from frontier.wire import NEED_DATA, Connection, Side
from frontier.wire.events import Hello, Ping, Pong, Request, Welcome

INTERVAL = 0.2


class ScriptedGateway:
    """Accepts one edge, welcomes it with a short heartbeat interval, then counts its
    pings and answers them with pongs while ``answering`` is set (nothing otherwise)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.answering = threading.Event()
        self.answering.set()
        self.pings: list[float] = []
        self.requests = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        conn = Connection(Side.GATEWAY)
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                conn.receive_data(data)
                while (event := conn.next_event()) is not NEED_DATA:
                    if isinstance(event, Hello):
                        sock.sendall(conn.send(Welcome(7, 1 << 20, INTERVAL, 1 << 20, 1024)))
                    elif isinstance(event, Ping):
                        self.pings.append(time.monotonic())
                        if self.answering.is_set():
                            sock.sendall(conn.send(Pong(event.nonce)))
                    elif isinstance(event, Request):
                        self.requests += 1  # never answered

    def close(self) -> None:
        self.listener.close()


def test_an_idle_edge_pings_and_a_silent_gateway_ends_the_link() -> None:
    gw = ScriptedGateway()
    edge = Edge(gw.addr, meta=b"hb", timeout=5.0, reconnect=False)
    try:
        time.sleep(6 * INTERVAL)
        assert edge.connected
        assert len(gw.pings) >= 3, gw.pings  # about one per interval while idle
        gaps = [b - a for a, b in zip(gw.pings, gw.pings[1:])]
        assert all(0.5 * INTERVAL < g < 2.5 * INTERVAL for g in gaps), gaps

        gw.answering.clear()  # the gateway goes silent: no pong, nothing
        started = time.monotonic()
        with pytest.raises((ConnectionClosed, Timeout)):
            edge.call("never-answered", b"", timeout=5.0)  # waits until the link ends
        took = time.monotonic() - started
        assert took < 3 * INTERVAL + 1.5, took  # three silent intervals and a sweep, not the call's 5 s
        assert not edge.connected
        with pytest.raises(FrontierError):
            edge.call("after", b"", timeout=1.0)
    finally:
        edge.close()
        gw.close()
