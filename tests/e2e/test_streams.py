"""Streams: lossless, ordered, flow-controlled, socket-like, both directions."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from frontier.sdk import ConnectionClosed, RemoteError, StreamRefused, StreamReset, Timeout
from tests.streams import open_accepted

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
    st, acc = open_accepted(lambda: e.open_stream("who"), svc.accept_stream)
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
    st, acc = open_accepted(lambda: e.open_stream("slow-reader"), svc.accept_stream)
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
    st, acc = open_accepted(lambda: e.open_stream("half"), svc.accept_stream)
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
    st, acc = open_accepted(lambda: e.open_stream("lines"), svc.accept_stream)
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
    st, _ = open_accepted(lambda: e.open_stream("quiet"), svc.accept_stream)
    st.settimeout(0.2)
    with pytest.raises(Timeout):
        st.recv(10)


def test_calls_and_messages_ride_the_stream(service, edge):
    svc = service(name="rides")
    svc.register("connection-level", lambda req: b"conn")
    e = edge()
    st, acc = open_accepted(lambda: e.open_stream("rides"), svc.accept_stream)
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
    st, _ = open_accepted(lambda: e.open_stream("resets"), svc.accept_stream)
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


def test_open_stream_waits_until_the_far_side_accepts(service, edge):
    svc = service(name="late-acceptor")
    e = edge()
    accepted = {}

    def accept_later():
        time.sleep(0.6)
        accepted["at"] = time.monotonic()
        accepted["stream"] = svc.accept_stream(timeout=5)

    t = threading.Thread(target=accept_later, daemon=True)
    t.start()
    st = e.open_stream("late-acceptor", timeout=5)
    returned = time.monotonic()
    t.join(5)
    assert returned >= accepted["at"]  # not before accept_stream was called
    st.sendall(b"ping")
    assert accepted["stream"].recv_exactly(4) == b"ping"
    st.close()


def test_a_service_that_never_accepts_refuses_the_stream_in_its_accept_time(service, edge):
    svc = service(name="never-accepts", stream_accept_timeout=0.5)
    e = edge()
    started = time.monotonic()
    offered = threading.Timer(0.2, lambda: seen.append(svc.streams()))
    seen: list = []
    offered.start()
    with pytest.raises(StreamRefused, match="accept_stream"):
        e.open_stream("never-accepts", timeout=5)
    offered.join()
    assert seen == [[]] and svc._link.streams == {}  # offered, never listed as open; then gone
    assert time.monotonic() - started < 3
    # the refused stream is gone on both sides: the edge can open again (and is refused again)
    with pytest.raises(StreamRefused):
        e.open_stream("never-accepts", timeout=5)
    assert not e._link.streams


def test_an_open_the_opener_gave_up_on_is_not_handed_to_accept_stream(service, edge):
    svc = service(name="slow-acceptor")
    e = edge()
    started = time.monotonic()
    with pytest.raises(Timeout):
        e.open_stream("slow-acceptor", timeout=0.4)
    assert time.monotonic() - started < 2
    time.sleep(0.3)  # the far side's own deadline (the opener's 0.4 s) has passed too
    with pytest.raises(Timeout):
        svc.accept_stream(timeout=0.3)
    assert svc._accepts.qsize() == 0 and not svc._link.streams


def test_sendall_to_a_peer_that_never_reads_raises_timeout(gateway, clients):
    from frontier.sdk import Edge, Service

    svc = clients(Service, gateway.service_addr, name="never-reads", stream_window=64 * 1024)
    e = clients(Edge, gateway.edge_addr, timeout=1.0)
    st, acc = open_accepted(lambda: e.open_stream("never-reads"), svc.accept_stream)
    started = time.monotonic()
    with pytest.raises(Timeout, match="read nothing"):
        st.sendall(b"x" * 3_000_000)  # the window is 64 KiB and nobody reads
    assert 0.9 <= time.monotonic() - started < 4
    st.close()
    acc.close()


def test_streams_lists_each_ends_open_streams(service, edge):
    """Go's ListStreams: ``svc.streams()`` and ``edge.streams()``."""
    svc = service(name="lister")
    dev = edge()
    assert svc.streams() == [] and dev.streams() == []
    pairs = [open_accepted(lambda: dev.open_stream("lister", timeout=5), svc.accept_stream) for _ in range(2)]
    opened, accepted = [p[0] for p in pairs], [p[1] for p in pairs]
    assert dev.streams() == opened
    assert svc.streams() == accepted and {st.edge_id for st in svc.streams()} == {dev.edge_id}
    to_edge, from_service = open_accepted(lambda: svc.open_stream(dev.edge_id, timeout=5), dev.accept_stream)
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
