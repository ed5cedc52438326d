"""``call_async`` / ``publish_async`` on ``Edge`` and ``Service`` against a real
gateway: the future resolves to what the blocking call returns, or raises the same
typed error; deadlines apply; a closing link fails what is in flight."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, wait

import pytest

from frontier.sdk import (
    ConnectionClosed, Edge, EdgeNotOnline, RemoteError, RpcNotOnline, Service, Timeout, TopicNotOnline,
)
from tests.gateway import ROOT, GatewayProcess


@pytest.fixture
def pair(gateway: GatewayProcess, clients):
    """A service answering ``echo``/``boom``/``slow`` and taking topic ``t``, and an edge
    answering ``ping``."""
    svc = clients(Service, gateway.service_addr, name="async-svc", topics=["t"])
    svc.register("echo", lambda req: b"echo:" + req.data)

    def boom(req):
        raise ValueError("no " + req.data.decode())

    svc.register("boom", boom)
    svc.register("slow", lambda req: time.sleep(float(req.data)) or b"late")
    edge = clients(Edge, gateway.edge_addr, meta=b"async-edge")
    edge.register("ping", lambda req: b"pong:" + req.data)
    return svc, edge


def test_edge_call_async_resolves_to_the_answer(pair) -> None:
    svc, edge = pair
    futures = [edge.call_async("echo", b"%d" % i) for i in range(200)]  # all in flight at once
    assert all(isinstance(f, Future) for f in futures)
    assert [f.result(10) for f in futures] == [b"echo:%d" % i for i in range(200)]
    assert edge.call_async("echo", "text").result(10) == b"echo:text"  # str as UTF-8, as call()


def test_edge_call_async_raises_the_typed_errors_call_raises(pair) -> None:
    svc, edge = pair
    with pytest.raises(RpcNotOnline):
        edge.call_async("nobody-serves-this", b"").result(10)
    with pytest.raises(RemoteError, match="no way"):
        edge.call_async("boom", b"way").result(10)
    with pytest.raises(RpcNotOnline):
        edge.call("nobody-serves-this", b"")
    with pytest.raises(TypeError):  # bad data: the future says so, as call() raises it
        edge.call_async("echo", 42).result(1)  # type: ignore[arg-type]


def test_call_async_deadline(pair) -> None:
    svc, edge = pair
    started = time.monotonic()
    future = edge.call_async("slow", b"3", timeout=0.3)
    with pytest.raises(Timeout):
        future.result(10)
    took = time.monotonic() - started
    assert 0.25 <= took < 2.0, took
    assert edge.call_async("echo", b"after").result(10) == b"echo:after"  # the link is fine


def test_blocking_call_deadline_comes_from_the_deadline_heap(pair) -> None:
    svc, edge = pair
    started = time.monotonic()
    with pytest.raises(Timeout):
        edge.call("slow", b"3", timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert edge.call("echo", b"x") == b"echo:x"


def test_edge_publish_async(pair) -> None:
    svc, edge = pair
    futures = [edge.publish_async("t", b"m%d" % i) for i in range(20)]
    got = []
    for _ in range(20):
        msg = svc.receive(timeout=10)
        got.append(msg.data)
        msg.done()
    assert [f.result(10) for f in futures] == [None] * 20
    assert sorted(got) == sorted(b"m%d" % i for i in range(20))
    rejected = edge.publish_async("t", b"bad")
    svc.receive(timeout=10).error("not today")
    with pytest.raises(RemoteError, match="not today"):
        rejected.result(10)
    with pytest.raises(TopicNotOnline):
        edge.publish_async("no-such-topic", b"").result(10)


def test_service_call_and_publish_async_to_an_edge(pair) -> None:
    svc, edge = pair
    futures = [svc.call_async(edge.edge_id, "ping", b"%d" % i) for i in range(50)]
    assert [f.result(10) for f in futures] == [b"pong:%d" % i for i in range(50)]
    received = []

    def receive() -> None:
        msg = edge.receive(timeout=10)
        received.append((msg.topic, msg.data))
        msg.done()

    t = threading.Thread(target=receive)
    t.start()
    assert svc.publish_async(edge.edge_id, b"hello", topic="news").result(10) is None
    t.join(10)
    assert received == [("news", b"hello")]
    with pytest.raises(EdgeNotOnline):
        svc.call_async(987654321, "ping", b"").result(10)
    with pytest.raises(EdgeNotOnline):
        svc.publish_async(987654321, b"").result(10)


def test_closing_fails_what_is_in_flight(gateway: GatewayProcess, clients) -> None:
    svc = clients(Service, gateway.service_addr, name="async-close-svc")
    release = threading.Event()
    svc.register("hold", lambda req: release.wait(10) and b"done")
    edge = clients(Edge, gateway.edge_addr, meta=b"closing")
    futures = [edge.call_async("hold", b"") for _ in range(5)]
    time.sleep(0.2)
    edge.close()
    done, not_done = wait(futures, timeout=5)
    assert not not_done
    for f in futures:
        with pytest.raises(ConnectionClosed):
            f.result()
    with pytest.raises(ConnectionClosed):
        edge.call_async("hold", b"").result(5)
    release.set()


def test_async_under_gevent_in_a_patched_process(gateway: GatewayProcess, clients) -> None:
    """The same in a gevent-monkey-patched process (as under Locust): many futures
    from greenlets, deadlines, typed errors."""
    svc = clients(Service, gateway.service_addr, name="async-gevent-svc", topics=["g"], max_pending=4096)
    svc.register("echo", lambda req: b"echo:" + req.data)
    svc.register("slow", lambda req: time.sleep(2) or b"late")
    stop = threading.Event()

    def ack() -> None:
        while not stop.is_set():
            try:
                svc.receive(timeout=0.2).done()
            except Timeout:
                continue
            except ConnectionClosed:
                return

    t = threading.Thread(target=ack, daemon=True)
    t.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.sdk.gevent_async_driver", gateway.edge_addr],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["patched"] is True
    assert out["echo_ok"] == out["echo_sent"] == 20 * 50
    assert out["published"] == 20 * 5
    assert out["timeout"] == "Timeout" and 0.25 <= out["timeout_after"] < 1.5
    assert out["rpc_not_online"] == "RpcNotOnline"
    assert out["blocking_calls"] == 20 * 10
    assert out["reads_after_readiness"] is True  # the reader waits for readability, then reads once
    assert out["closed_while_waiting"] == "ConnectionClosed" and out["closed_after"] < 1.0
