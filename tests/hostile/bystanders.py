"""Well-behaved bystanders, in a process of their own, whose experience a hostile test judges.

    python -m tests.hostile.bystanders EDGE_ADDR SERVICE_ADDR [--edges 200] [--interval 0.1] [--seconds 6]

One ``selectors`` loop over raw sockets speaking the real wire protocol (the sans-io
``Connection`` on each): one service named ``bystander`` that answers ``echo``, and
``--edges`` edges that each call ``echo`` every ``--interval`` seconds, one call at a
time (paced, not flat out: what is measured is the gateway's latency, not this
process's CPU). Once every connection is welcomed it calls for ``--baseline``
seconds and prints ``BASELINE`` and that window's summary (the test starts its attack
then: the baseline is what this machine gives with no attack), and after
``--seconds`` more of calls it prints one JSON line: calls, p50/p99/max latency in ms, errors by
code, and how many of its connections ended (a bystander must never be cut off).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import selectors
import socket
import time
from typing import Any

from frontier.wire import NEED_DATA, PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE, Connection, Side
from frontier.wire.events import GoAway, Hello, PeerClosed, Ping, Pong, Request, Response, Welcome


class Peer:
    """One connection: socket, protocol machine, unsent bytes."""

    def __init__(self, index: int, addr: tuple[str, int], hello: Hello) -> None:
        self.index = index
        self.sock = socket.create_connection(addr, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.conn = Connection(Side.CLIENT)
        self.out = bytearray(self.conn.send(hello))
        self.welcomed = False
        self.ended = ""
        self.sent_at = 0.0  #: when the call in flight was sent (0: none)
        self.next_id = 1


class Bystanders:
    """The loop; see the module docstring."""

    def __init__(self, edge_addr: tuple[str, int], service_addr: tuple[str, int], edges: int, interval: float) -> None:
        self.sel = selectors.DefaultSelector()
        self.interval = interval
        self.service = self._add(Peer(-1, service_addr, Hello(PROTOCOL_VERSION, ROLE_SERVICE, "bystander", rpcs=("echo",))))
        self.edges = [self._add(Peer(i, edge_addr, Hello(PROTOCOL_VERSION, ROLE_EDGE, meta=b"bystander")))
                      for i in range(edges)]
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.timers: list[tuple[float, int]] = []
        self.measuring = False

    def _add(self, peer: Peer) -> Peer:
        self.sel.register(peer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)
        return peer

    def _write(self, peer: Peer, frame: bytes) -> None:
        peer.out += frame
        self._flush(peer)

    def _flush(self, peer: Peer) -> None:
        if peer.out and not peer.ended:
            try:
                sent = peer.sock.send(peer.out)
                del peer.out[:sent]
            except BlockingIOError:
                pass
            except OSError as exc:
                self._end(peer, f"write: {exc}")
                return
        if not peer.ended:
            self.sel.modify(peer.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.out else 0), peer)

    def _end(self, peer: Peer, why: str) -> None:
        if not peer.ended:
            peer.ended = why or "closed"
            self.sel.unregister(peer.sock)
            peer.sock.close()

    def _read(self, peer: Peer, now: float) -> None:
        try:
            data = peer.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(peer, f"read: {exc}")
            return
        peer.conn.receive_data(data)
        while True:
            event = peer.conn.next_event()
            if event is NEED_DATA:
                return
            kind = type(event)
            if kind is Welcome:
                peer.welcomed = True
            elif kind is Request:  # the service's echo
                self._write(peer, peer.conn.send(Response(event.call_id, 0, event.data)))
            elif kind is Response:
                self._answered(peer, event, now)
            elif kind is Ping:
                self._write(peer, peer.conn.send(Pong(event.nonce)))
            elif kind is GoAway or kind is PeerClosed:
                self._end(peer, f"{kind.__name__} {getattr(event, 'code', '')} {getattr(event, 'message', '')}")
                return

    def _answered(self, peer: Peer, event: Response, now: float) -> None:
        if self.measuring and peer.sent_at:
            if event.code == 0:
                self.latencies.append(now - peer.sent_at)
            else:
                self.errors[str(event.code)] = self.errors.get(str(event.code), 0) + 1
        peer.sent_at = 0.0
        heapq.heappush(self.timers, (max(now, peer.last_start + self.interval), peer.index))

    def _call(self, peer: Peer, now: float) -> None:
        if peer.ended:
            return
        peer.sent_at = peer.last_start = now
        peer.next_id += 1
        self._write(peer, peer.conn.send(Request(peer.next_id, "echo", b"x" * 64, 10_000)))

    def poll(self, until: float) -> None:
        """Run the loop until ``until`` (monotonic)."""
        while True:
            now = time.monotonic()
            if now >= until:
                return
            wait = until - now
            if self.timers:
                wait = min(wait, max(0.0, self.timers[0][0] - now))
            for key, mask in self.sel.select(wait):
                peer = key.data
                if mask & selectors.EVENT_READ:
                    self._read(peer, time.monotonic())
                if mask & selectors.EVENT_WRITE and not peer.ended:
                    self._flush(peer)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, index = heapq.heappop(self.timers)
                self._call(self.edges[index], now)

    def connect(self, timeout: float = 30.0) -> None:
        """Wait until the service and every edge are welcomed."""
        deadline = time.monotonic() + timeout
        while not all(p.welcomed or p.ended for p in (self.service, *self.edges)):
            if time.monotonic() > deadline:
                raise SystemExit("bystanders: not every connection was welcomed in time")
            self.poll(min(deadline, time.monotonic() + 0.05))
        ended = [p.ended for p in (self.service, *self.edges) if p.ended]
        if ended:
            raise SystemExit(f"bystanders: refused: {ended[:3]}")

    def start(self) -> None:
        """Start every edge's calls, spread over one interval."""
        now = time.monotonic()
        for i, peer in enumerate(self.edges):
            peer.last_start = now
            heapq.heappush(self.timers, (now + self.interval * i / len(self.edges), i))

    def measure(self, seconds: float) -> dict[str, Any]:
        """Keep calling for ``seconds``; return the summary of that window."""
        self.latencies, self.errors = [], {}
        self.measuring = True
        self.poll(time.monotonic() + seconds)
        self.measuring = False
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else -1.0

        ended = [p.ended for p in (self.service, *self.edges) if p.ended]
        return {"calls": len(lat), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                "errors": self.errors, "disconnected": len(ended), "why": ended[:3],
                "stalled": sum(1 for p in self.edges if p.sent_at and time.monotonic() - p.sent_at > 1.0)}


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("edge_addr")
    parser.add_argument("service_addr")
    parser.add_argument("--edges", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--baseline", type=float, default=3.0)
    args = parser.parse_args()
    crowd = Bystanders(_addr(args.edge_addr), _addr(args.service_addr), args.edges, args.interval)
    crowd.connect()
    crowd.start()
    print("BASELINE", json.dumps(crowd.measure(args.baseline)), flush=True)
    print(json.dumps(crowd.measure(args.seconds)), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
