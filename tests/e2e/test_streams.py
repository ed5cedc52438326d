"""Streams: lossless, ordered, flow-controlled, socket-like, both directions."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from frontier.sdk import ConnectionClosed, RemoteError, StreamReset, Timeout

EIGHT_MB = 8 * 1024 * 1024


def echo_server(accept):
    """Accept one stream and echo everything back until the peer ends."""

    def run():
        st = accept(timeout=5)
        while True:
            data = st.recv(65536)
            if not data:
                break
            st.sendall(data)
        st.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def echo_roundtrip(st, payload: bytes) -> bytes:
    """Send ``payload`` from one thread while reading the echo in this one."""
    writer = threading.Thread(target=lambda: (st.sendall(payload), st.shutdown_write()), daemon=True)
    writer.start()
    h, n = hashlib.sha256(), 0
    while True:
        data = st.recv(1 << 16)
        if not data:
            break
        h.update(data)
        n += len(data)
    writer.join(10)
    assert n == len(payload)
    return h.digest()


def test_edge_to_service_8mb_echo(service, edge):
    svc = service(name="echo-streams")
    e = edge(meta=b"who-opened")
    server = echo_server(svc.accept_stream)
    payload = os.urandom(EIGHT_MB)
    with e.open_stream("echo-streams") as st:
        assert echo_roundtrip(st, payload) == hashlib.sha256(payload).digest()
    server.join(10)


def test_service_to_edge_8mb_echo(service, edge):
    svc = service()
    e = edge()
    server = echo_server(e.accept_stream)
    payload = os.urandom(EIGHT_MB)
    with svc.open_stream(e.edge_id) as st:
        assert echo_roundtrip(st, payload) == hashlib.sha256(payload).digest()
    server.join(10)


def test_accepted_stream_knows_the_opening_edge(service, edge):
    svc = service(name="who")
    e = edge(meta=b"sensor-7")
    st = e.open_stream("who")
    acc = svc.accept_stream(timeout=5)
    assert acc.edge_id == e.edge_id
    assert acc.meta == b"sensor-7"
    assert acc.addr.startswith("127.0.0.1:")
    st.close()
    acc.close()


def test_slow_reader_loses_nothing_and_slows_the_writer(gateway, clients):
    from frontier.sdk import Edge, Service

    window = 64 * 1024
    svc = clients(Service, gateway.service_addr, name="slow-reader", stream_window=window)
    e = clients(Edge, gateway.edge_addr, stream_window=window)
    payload = os.urandom(2 * 1024 * 1024)
    st = e.open_stream("slow-reader")
    acc = svc.accept_stream(timeout=5)
    sent = {"done_at": None}

    def write():
        st.sendall(payload)
        sent["done_at"] = time.monotonic()
        st.shutdown_write()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(0.5)
    # the reader has not read anything: the writer is held back by the window
    assert sent["done_at"] is None
    got = bytearray()
    while True:
        data = acc.recv(4096)
        if not data:
            break
        got += data
        if len(got) < 256 * 1024:
            time.sleep(0.001)  # read slowly at first
    writer.join(10)
    assert bytes(got) == payload


def test_recv_returns_empty_at_eof_and_half_close_keeps_other_direction(service, edge):
    svc = service(name="half")
    e = edge()
    st = e.open_stream("half")
    acc = svc.accept_stream(timeout=5)
    st.sendall(b"request")
    st.shutdown_write()
    assert acc.recv_exactly(7) == b"request"
    assert acc.recv(10) == b""
    acc.sendall(b"response")  # the other direction still works
    acc.shutdown_write()
    assert st.recv_exactly(8) == b"response"
    assert st.recv(1) == b""


def test_makefile_lines(service, edge):
    svc = service(name="lines")
    e = edge()
    st = e.open_stream("lines")
    acc = svc.accept_stream(timeout=5)
    w = st.makefile("wb")
    w.write(b"line one\nline two\n")
    w.flush()
    st.shutdown_write()
    r = acc.makefile("rb")
    assert r.readline() == b"line one\n"
    assert r.readline() == b"line two\n"
    assert r.readline() == b""


def test_recv_timeout(service, edge):
    svc = service(name="quiet")
    e = edge()
    st = e.open_stream("quiet")
    svc.accept_stream(timeout=5)
    st.settimeout(0.2)
    with pytest.raises(Timeout):
        st.recv(10)


def test_calls_and_messages_ride_the_stream(service, edge):
    svc = service(name="rides")
    svc.register("connection-level", lambda req: b"conn")
    e = edge()
    st = e.open_stream("rides")
    acc = svc.accept_stream(timeout=5)
    acc.register("on-stream", lambda req: b"stream:" + req.data)
    assert st.call("on-stream", b"x") == b"stream:x"
    # falls back to the client's handlers
    assert st.call("connection-level", b"") == b"conn"
    # and the other direction
    st.register("edge-side", lambda req: b"edge-stream")
    assert acc.call("edge-side", b"") == b"edge-stream"

    box = {}

    def publish():
        try:
            st.publish(b"on-the-stream", topic="s")
        except RemoteError as exc:
            box["error"] = exc

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    msg = acc.receive(timeout=5)
    assert (msg.data, msg.topic) == (b"on-the-stream", "s")
    msg.error("refused on stream")
    t.join(5)
    assert "refused on stream" in str(box["error"])

    def raising(req):
        raise RuntimeError("stream handler failed")

    acc.register("bad", raising)
    with pytest.raises(RemoteError, match="stream handler failed"):
        st.call("bad", b"")


def test_peer_going_offline_resets_stream(service, edge):
    svc = service(name="resets")
    e = edge()
    st = e.open_stream("resets")
    svc.accept_stream(timeout=5)
    svc.close()
    st.settimeout(5)
    with pytest.raises((StreamReset, ConnectionClosed)):
        while True:
            if not st.recv(10):
                raise AssertionError("a reset stream must not look like a clean end")


def test_many_streams_at_once(service, edge):
    svc = service(name="multi")
    e = edge()
    n = 8
    servers = [echo_server(svc.accept_stream) for _ in range(n)]
    payloads = [os.urandom(256 * 1024) for _ in range(n)]
    results = [None] * n

    def client(i):
        with e.open_stream("multi") as st:
            results[i] = echo_roundtrip(st, payloads[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for s in servers:
        s.join(10)
    assert results == [hashlib.sha256(p).digest() for p in payloads]


def test_streams_lists_each_ends_open_streams(service, edge):
    """Go's ListStreams: ``svc.streams()`` and ``edge.streams()``."""
    svc = service(name="lister")
    dev = edge()
    assert svc.streams() == [] and dev.streams() == []
    opened = [dev.open_stream("lister", timeout=5) for _ in range(2)]
    accepted = [svc.accept_stream(timeout=5) for _ in range(2)]
    assert dev.streams() == opened
    assert svc.streams() == accepted and {st.edge_id for st in svc.streams()} == {dev.edge_id}
    to_edge = svc.open_stream(dev.edge_id, timeout=5)
    from_service = dev.accept_stream(timeout=5)
    assert svc.streams() == [*accepted, to_edge] and dev.streams() == [*opened, from_service]

    opened[0].close()  # gone from its own list at once; the other end still holds its half
    assert dev.streams() == [opened[1], from_service]
    assert accepted[0].recv(10) == b""
    accepted[0].close()
    deadline = time.monotonic() + 5
    while svc.streams() != [accepted[1], to_edge]:
        assert time.monotonic() < deadline, svc.streams()
        time.sleep(0.02)
    dev.close()  # every stream of a closed connection is gone
    deadline = time.monotonic() + 5
    while svc.streams():
        assert time.monotonic() < deadline, svc.streams()
        time.sleep(0.02)
