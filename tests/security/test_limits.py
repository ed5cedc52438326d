"""Limits against hostile or broken peers, over real sockets: silent connections,
flapping clients, connection caps, huge frame headers, slow consumers, in-flight
caps, stream windows. After each, real clients must still be served."""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time

import pytest

from frontier.sdk import ConnectionClosed, Edge, EdgeNotOnline, FrontierError, Service
from frontier.wire.errors import ErrorCode
from frontier.wire.events import (
    PROTOCOL_VERSION, ROLE_EDGE, GoAway, Hello, Publish, Ack, Refuse, Request, Response, StreamAccept, StreamData,
    StreamOpen, StreamReset, Welcome,
)
from tests.e2e.proc_tools import RawClient, wait_until
from tests.security.conftest import metric, rss_kb, tls_block


def _wait_all_closed(socks: list[socket.socket], timeout: float) -> float:
    """Read every socket until EOF (or reset); return when all are closed, or fail."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    open_ = len(socks)
    deadline = time.monotonic() + timeout
    while open_:
        left = deadline - time.monotonic()
        assert left > 0, f"{open_} of {len(socks)} connections still open after {timeout}s"
        for key, _ in sel.select(min(left, 1.0)):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                open_ -= 1
    sel.close()
    return time.monotonic()


def _echo_service(clients, gw, **kw) -> Service:
    svc = clients(Service, gw.service_addr, name="echo-svc", **kw)
    svc.register("echo", lambda req: req.data)
    return svc


# -- connections that never say hello ---------------------------------------------------------------------


def test_two_thousand_silent_connections_are_closed_while_a_real_edge_connects(gateway_factory, clients):
    deadline = 2.0
    gw = gateway_factory({"limits": {"handshake_timeout": deadline}})
    _echo_service(clients, gw)
    opened = time.monotonic()
    socks = []
    try:
        for _ in range(2000):
            socks.append(socket.create_connection(("127.0.0.1", gw.edge_port), timeout=5))
        # the gateway is busy holding 2000 silent sockets: a real edge still gets in and is served
        edge = clients(Edge, gw.edge_addr)
        assert edge.call("echo", b"meanwhile") == b"meanwhile"
        closed_at = _wait_all_closed(socks, deadline + 15)
        assert closed_at - opened >= deadline * 0.8
        assert edge.call("echo", b"after") == b"after"
    finally:
        for s in socks:
            s.close()


def test_silent_connections_on_a_tls_port_are_closed_too(gateway_factory, clients, pki):
    gw = gateway_factory({"limits": {"handshake_timeout": 1.0}, "edgebound": {"listen": {"tls": tls_block(pki)}}})
    socks = [socket.create_connection(("127.0.0.1", gw.edge_port), timeout=5) for _ in range(200)]
    try:
        edge = clients(Edge, gw.edge_addr, tls_ca=str(pki.ca.cert_path))
        assert edge.connected
        _wait_all_closed(socks, 10)
    finally:
        for s in socks:
            s.close()


# -- flapping clients and caps --------------------------------------------------------------------------


def test_a_flapping_client_is_banned_and_recovers_after_the_ban(gateway_factory, clients):
    ban = 2.0
    gw = gateway_factory({"limits": {"connect_rate_per_ip": 5, "connect_burst_per_ip": 5, "ban_seconds": ban}},
                         control=True)
    time.sleep(1.2)  # the startup probes' tokens come back
    svc = _echo_service(clients, gw)
    refused = 0
    for _ in range(30):  # a crash-looping client: connect, give up, connect again
        try:
            with RawClient(gw.edge_addr) as raw:
                raw.send(Hello(PROTOCOL_VERSION, ROLE_EDGE))
                if raw.read_event(3.0) is None:
                    refused += 1
        except (ConnectionResetError, BrokenPipeError):
            refused += 1
    banned_at = time.monotonic()
    assert refused >= 20, refused
    # banned: even a well-behaved client from that address is turned away, at once
    with pytest.raises(ConnectionClosed):
        Edge(gw.edge_addr, timeout=3.0, reconnect=False)
    assert time.monotonic() - banned_at < ban
    assert "banning 127.0.0.1" in gw.log()
    assert metric(gw, "frontier_connections_refused_total", role="edge", reason="rate_limited") >= 1
    assert metric(gw, "frontier_connections_refused_total", role="edge", reason="banned") >= 1
    # the ban ends: the address may connect again
    time.sleep(max(0.0, ban - (time.monotonic() - banned_at)) + 0.3)
    edge = clients(Edge, gw.edge_addr)
    assert edge.call("echo", b"welcome back") == b"welcome back"
    assert svc.connected  # the established service was never touched


def test_listener_and_per_ip_caps(gateway_factory, clients):
    gw = gateway_factory({"limits": {"max_edge_connections": 3, "max_connections_per_ip": 4}})
    edges = [clients(Edge, gw.edge_addr) for _ in range(3)]
    with pytest.raises(ConnectionClosed):
        Edge(gw.edge_addr, timeout=3.0, reconnect=False)  # the edge listener is full
    svc = clients(Service, gw.service_addr)  # the service listener is not: 4 from this IP now
    with pytest.raises(ConnectionClosed):
        Service(gw.service_addr, timeout=3.0, reconnect=False)  # the IP is full
    edges[0].close()
    wait_until(lambda: Edge(gw.edge_addr, timeout=3.0, reconnect=False).close() is None, 5, what="a freed slot")
    assert svc.connected and all(e.connected for e in edges[1:])


def test_exempt_addresses_skip_the_per_ip_limits(gateway_factory, clients):
    gw = gateway_factory({"limits": {"max_connections_per_ip": 1, "connect_rate_per_ip": 1, "connect_burst_per_ip": 1,
                                     "exempt_ips": ["127.0.0.0/8"]}})
    edges = [clients(Edge, gw.edge_addr) for _ in range(5)]
    assert all(e.connected for e in edges)


# -- frames that announce too much ------------------------------------------------------------------------


def test_a_one_gigabyte_frame_is_refused_without_allocating_it(gateway_factory, clients):
    gw = gateway_factory()
    _echo_service(clients, gw)
    time.sleep(0.5)
    before = rss_kb(gw.proc.pid)
    junk = b"\x00" * 32768
    for i in range(40):
        with RawClient(gw.edge_addr) as raw:
            if i % 2:
                raw.hello_edge()
            raw.send_raw(struct.pack(">I", 1 << 30) + junk)
            events = raw.read_until_closed(5.0)
        assert [(type(ev), ev.code) for ev in events] in ([(Refuse, ErrorCode.FRAME_TOO_LARGE)], [(GoAway, ErrorCode.FRAME_TOO_LARGE)]), events
    # before the handshake the limit is much smaller than max_frame_size
    with RawClient(gw.edge_addr) as raw:
        raw.send_raw(struct.pack(">I", 512 * 1024) + junk)
        events = raw.read_until_closed(5.0)
    assert [(type(ev), ev.code) for ev in events] == [(Refuse, ErrorCode.FRAME_TOO_LARGE)], events
    grown = rss_kb(gw.proc.pid) - before
    assert grown < 16 * 1024, f"the gateway grew by {grown} KiB"
    assert clients(Edge, gw.edge_addr).call("echo", b"ok") == b"ok"


# -- a peer that does not read --------------------------------------------------------------------------------


def test_a_slow_consumer_is_cut_off_while_other_edges_are_served(gateway_factory, clients):
    cap = 1 << 20
    gw = gateway_factory({"limits": {"max_outgoing_bytes": cap}})
    svc = _echo_service(clients, gw, timeout=30.0)
    sink = RawClient(gw.edge_addr)
    sink.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_id = sink.hello_edge(rpcs=("sink",)).id  # and from now on it never reads
    healthy = clients(Edge, gw.edge_addr)
    healthy.register("ping", lambda req: b"pong")
    rss_before = rss_kb(gw.proc.pid)

    outcomes: list[BaseException | None] = []
    payload = b"p" * (256 * 1024)

    def push(use_call: bool) -> None:
        try:
            while True:
                if use_call:
                    svc.call(slow_id, "sink", payload, timeout=20.0)
                else:
                    svc.publish(slow_id, payload, timeout=20.0)
        except BaseException as exc:  # noqa: BLE001 - collected
            outcomes.append(exc)

    started = time.monotonic()
    pushers = [threading.Thread(target=push, args=(n % 2 == 0,), daemon=True) for n in range(24)]
    for t in pushers:
        t.start()
    latencies = []
    while any(t.is_alive() for t in pushers) and time.monotonic() - started < 20:
        t0 = time.monotonic()
        assert healthy.call("echo", b"unaffected", timeout=5.0) == b"unaffected"
        assert svc.call(healthy.edge_id, "ping", b"", timeout=5.0) == b"pong"
        latencies.append(time.monotonic() - t0)
    for t in pushers:
        t.join(5)
    assert len(outcomes) == len(pushers), "the slow consumer was never cut off"
    assert all(isinstance(e, EdgeNotOnline) for e in outcomes), {type(e).__name__ for e in outcomes}
    assert time.monotonic() - started < 15
    assert max(latencies) < 2.0, max(latencies)
    assert "slow consumer" in gw.log()
    assert rss_kb(gw.proc.pid) - rss_before < 64 * 1024
    sink.close()
    assert healthy.call("echo", b"after") == b"after"


# -- in-flight caps and stream windows -------------------------------------------------------------------------


def test_in_flight_calls_and_publishes_are_capped_per_connection(gateway_factory, clients):
    gw = gateway_factory({"limits": {"max_inflight": 4}})
    release = threading.Event()
    svc = clients(Service, gw.service_addr, topics=["t"], handler_threads=8)
    svc.register("hold", lambda req: (release.wait(10), b"done")[1])
    with RawClient(gw.edge_addr) as raw:
        raw.hello_edge()
        for call_id in range(1, 5):
            raw.send(Request(call_id, "hold", b"", 10_000))
        raw.send(Request(5, "hold", b"", 10_000))
        raw.send(Publish(6, "t", b"m", 10_000))
        over = [raw.read_event(3.0), raw.read_event(3.0)]
        assert {(type(ev), ev.code) for ev in over} == {(Response, ErrorCode.BUFFER_FULL), (Ack, ErrorCode.BUFFER_FULL)}, over
        release.set()
        done = sorted((raw.read_event(5.0) for _ in range(4)), key=lambda ev: ev.call_id)
        assert [(ev.call_id, ev.code, ev.data) for ev in done] == [(i, 0, b"done") for i in range(1, 5)]
        # the cap freed up: more work goes through
        raw.send(Request(7, "hold", b"", 10_000))
        assert raw.read_event(5.0) == Response(7, 0, b"done", "")
        # an id reused while its first use is in flight would slip past the count: refused
        release.clear()
        raw.send(Request(8, "hold", b"", 10_000))
        raw.send(Request(8, "hold", b"", 10_000))
        events = raw.read_until_closed(5.0)
        release.set()
    assert [(type(ev), ev.code) for ev in events] == [(GoAway, ErrorCode.PROTOCOL_ERROR)], events


def test_stream_windows_and_stream_counts_are_enforced(gateway_factory, clients):
    window = 65536
    gw = gateway_factory({"limits": {"max_streams": 3}})
    svc = clients(Service, gw.service_addr, name="streams", stream_window=window)
    accepted: list = []  # a stream is accepted when accept_stream takes it
    acceptor = threading.Thread(target=lambda: accepted.extend(svc.accept_stream(timeout=5) for _ in range(3)), daemon=True)
    acceptor.start()
    with RawClient(gw.edge_addr) as raw:
        raw.hello_edge()
        for sid in (1, 3, 5, 7):
            raw.send(StreamOpen(sid, "streams", None, b"", "", 1 << 20, 5000))
        answers = {}
        for _ in range(4):
            ev = raw.read_event(5.0)
            answers[ev.stream_id] = ev
        assert all(answers[sid] == StreamAccept(sid, window) for sid in (1, 3, 5)), answers
        assert isinstance(answers[7], StreamReset) and answers[7].code == ErrorCode.BUFFER_FULL, answers[7]
        # the window the service granted is the most the edge may send unacknowledged
        raw.send(StreamData(1, b"w" * window))
        raw.send(StreamData(1, b"!"))
        events = raw.read_until_closed(5.0)
    assert [(type(ev), ev.code) for ev in events] == [(GoAway, ErrorCode.PROTOCOL_ERROR)], events
    acceptor.join(5)
    assert accepted[0].recv_exactly(window) == b"w" * window  # every byte in the window arrived; no more
