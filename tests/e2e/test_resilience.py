"""Resilience over real sockets: peers dying mid-call, gateway restarts, duplicate
edge ids, hooks, heartbeats, hashby and head-of-line blocking.

Every wait has a deadline; nothing asserts how fast the gateway is, only that a
failure is reported promptly (a dead peer must not leave a caller hanging).
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from frontier.sdk import (
    ConnectionClosed, DuplicateEdge, Edge, EdgeNotOnline, FrontierError, Refused, Service, ServiceNotOnline,
)
from frontier.wire.errors import ErrorCode
from frontier.wire.events import GoAway
from tests.gateway import GatewayProcess
from tests.e2e.proc_tools import ChildProcess, RawClient, wait_until

PEER = ["-m", "tests.e2e.proc_peer"]


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; the dict gets ``value`` or ``error`` and ``at`` (monotonic)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc
        out["at"] = time.monotonic()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


# -- peers dying while something waits on them ------------------------------------------------


def test_service_process_killed_mid_call(gateway_factory, clients):
    gw = gateway_factory()
    child = ChildProcess([*PEER, "service", gw.service_addr, "--sleep", "60"])
    try:
        child.expect("READY", 10)
        edge = clients(Edge, gw.edge_addr, timeout=30.0)
        th, out = _in_thread(lambda: edge.call("sleep", b"", timeout=30.0))
        child.expect("HANDLING", 10)
        killed_at = time.monotonic()
        child.kill()
        th.join(5)
        assert not th.is_alive(), "the edge's call still hangs after the service process died"
        assert isinstance(out.get("error"), ServiceNotOnline), out
        assert out["at"] - killed_at < 1.0
        # the gateway forgot the dead service: a new call fails at once, typed
        with pytest.raises(FrontierError) as info:
            edge.call("sleep", b"", timeout=5.0)
        assert info.value.code == ErrorCode.RPC_NOT_ONLINE
    finally:
        child.kill()


def test_edge_process_killed_fails_every_waiting_service_call(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr, timeout=30.0)
    child = ChildProcess([*PEER, "edge", gw.edge_addr, "--sleep", "60"])
    try:
        edge_id = int(child.expect("READY", 10).split()[1])
        calls = [_in_thread(lambda: svc.call(edge_id, "sleep", b"", timeout=30.0)) for _ in range(5)]
        child.expect("HANDLING", 10)
        killed_at = time.monotonic()
        child.kill()
        for th, out in calls:
            th.join(5)
            assert not th.is_alive(), "a service call still hangs after the edge process died"
            assert isinstance(out.get("error"), EdgeNotOnline), out
            assert out["at"] - killed_at < 1.0
        with pytest.raises(EdgeNotOnline):
            svc.call(edge_id, "echo", b"x")
    finally:
        child.kill()


def test_service_closing_fails_publish_waiting_for_done(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr, topics=["orders"])
    edge = clients(Edge, gw.edge_addr, timeout=30.0)
    th, out = _in_thread(lambda: edge.publish("orders", b"o-1", timeout=30.0))
    msg = svc.receive(timeout=5)  # received, never answered
    assert msg.data == b"o-1"
    closed_at = time.monotonic()
    svc.close()
    th.join(5)
    assert not th.is_alive(), "the publish still waits for a done() that can never come"
    assert isinstance(out.get("error"), ServiceNotOnline), out
    assert out["at"] - closed_at < 1.0


def test_gateway_killed_fails_the_edges_waiting_call(gateway_factory, clients):
    gw = gateway_factory()
    started = threading.Event()
    svc = clients(Service, gw.service_addr)
    svc.register("hold", lambda req: (started.set(), time.sleep(10))[-1])
    edge = clients(Edge, gw.edge_addr, timeout=30.0, reconnect=False)
    th, out = _in_thread(lambda: edge.call("hold", b"", timeout=30.0))
    assert started.wait(5)
    killed_at = time.monotonic()
    gw.proc.kill()
    th.join(5)
    assert not th.is_alive()
    assert isinstance(out.get("error"), ConnectionClosed), out
    assert out["at"] - killed_at < 1.0


# -- a gateway restart: clients reconnect and replay what they registered --------------------


def test_reconnect_replays_registrations(tmp_path: Path, clients):
    first = GatewayProcess(tmp_path / "first").start()
    try:
        svc = clients(Service, first.service_addr, name="replay", topics=["t1"], backoff_max=0.3)
        svc.register("m", lambda req: b"m:" + req.data)
        onlines: list[int] = []
        svc.register_get_edge_id(lambda meta: int(meta))
        svc.register_edge_online(lambda edge_id, meta, addr: onlines.append(edge_id))
        got: queue.Queue = queue.Queue()

        def receive_loop() -> None:
            while True:
                try:
                    msg = svc.receive()
                except FrontierError:
                    return
                got.put((msg.topic, msg.data, msg.edge_id))
                msg.done()

        threading.Thread(target=receive_loop, daemon=True).start()
        edge = clients(Edge, first.edge_addr, meta=b"4242", backoff_max=0.3)
        edge.register("e", lambda req: b"edge:" + req.data)
        assert edge.edge_id == 4242
        assert edge.call("m", b"1") == b"m:1"
    finally:
        assert first.stop() == 0

    second = GatewayProcess(tmp_path / "second", {
        "servicebound": {"listen": {"addr": first.service_addr}},
        "edgebound": {"listen": {"addr": first.edge_addr}},
    })
    second.service_port, second.edge_port = first.service_port, first.edge_port
    second.start()
    try:
        # the method, replayed by the service's new handshake
        assert wait_until(lambda: edge.call("m", b"2", timeout=1.0) == b"m:2", 15, what="call after restart")
        # the topic
        edge.publish("t1", b"after", timeout=5.0)
        assert got.get(timeout=5) == ("t1", b"after", 4242)
        # the edge kept its id and its own methods
        assert edge.edge_id == 4242
        assert svc.call(4242, "e", b"x") == b"edge:x"
        # the hooks: a new edge is numbered by get_edge_id and announced to edge_online
        newcomer = clients(Edge, second.edge_addr, meta=b"777")
        assert newcomer.edge_id == 777
        assert 777 in onlines
    finally:
        second.stop()


# -- duplicate edge ids -------------------------------------------------------------------------


def test_duplicate_edge_id_kicks_the_older_connection(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr)
    svc.register("m", lambda req: b"ok")
    offline: list[tuple[int, bytes]] = []
    svc.register_edge_offline(lambda edge_id, meta, addr: offline.append((edge_id, meta)))

    older = clients(Edge, gw.edge_addr, edge_id=99, meta=b"older", backoff_max=0.2)
    older.register("who", lambda req: b"older")
    assert svc.call(99, "who", b"") == b"older"

    newer = clients(Edge, gw.edge_addr, edge_id=99, meta=b"newer")
    newer.register("who", lambda req: b"newer")
    assert newer.edge_id == 99

    wait_until(lambda: older.closed, 5, what="the older edge gives up")
    with pytest.raises((DuplicateEdge, ConnectionClosed)) as info:
        older.call("m", b"")
    assert isinstance(info.value, DuplicateEdge), info.value
    with pytest.raises(FrontierError):
        older.receive(timeout=1)

    time.sleep(1.0)  # time enough for a (wrong) reconnect or a (wrong) offline hook
    assert not older.connected
    assert svc.call(99, "who", b"") == b"newer"
    assert newer.call("m", b"") == b"ok"
    assert offline == [], "edge_offline ran for the replaced connection while the newer one is online"

    newer.close()
    wait_until(lambda: offline == [(99, b"newer")], 5, what="edge_offline for the newer connection")


# -- hooks ----------------------------------------------------------------------------------------


def test_hooks_assign_ids_and_report_online_and_offline(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr)
    onlines: list[tuple[int, bytes, str]] = []
    offlines: list[tuple[int, bytes, str]] = []
    svc.register_get_edge_id(lambda meta: 1000 + int(meta.split(b"-")[-1]))
    svc.register_edge_online(lambda edge_id, meta, addr: onlines.append((edge_id, meta, addr)))
    svc.register_edge_offline(lambda edge_id, meta, addr: offlines.append((edge_id, meta, addr)))

    a = clients(Edge, gw.edge_addr, meta=b"user-5")
    assert a.edge_id == 1005
    b = clients(Edge, gw.edge_addr, meta=b"user-6", edge_id=3)  # the id service decides, not the edge
    assert b.edge_id == 1006
    assert [(i, m) for i, m, _ in onlines] == [(1005, b"user-5"), (1006, b"user-6")]
    assert onlines[0][2].startswith("127.0.0.1:")

    a.close()
    wait_until(lambda: len(offlines) == 1, 5, what="edge_offline after close")
    assert offlines[0] == onlines[0]  # same id, meta and address as when it came online
    time.sleep(0.3)
    assert len(offlines) == 1 and b.connected  # the other edge is untouched


def test_edge_online_raising_refuses_the_edge(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr)
    onlines: list[int] = []

    def online(edge_id: int, meta: bytes, addr: str) -> None:
        if meta.startswith(b"banned"):
            raise ValueError(f"user {meta.decode()} is banned")
        onlines.append(edge_id)

    svc.register_edge_online(online)
    with pytest.raises(Refused) as info:
        Edge(gw.edge_addr, meta=b"banned-7", edge_id=7, timeout=5.0, reconnect=False)
    assert "user banned-7 is banned" in str(info.value)
    with pytest.raises(EdgeNotOnline):
        svc.publish(7, b"hello")
    alice = clients(Edge, gw.edge_addr, meta=b"alice", edge_id=8)
    assert onlines == [8] and alice.edge_id == 8


def test_a_message_published_while_the_edge_is_admitted_arrives_at_once(gateway_factory, clients):
    # The gateway holds frames for an edge while its edge_online hooks run and sends
    # them right behind the Welcome, so they can arrive in the same read as the Welcome.
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr)
    published: dict[str, Any] = {}

    def online(edge_id: int, meta: bytes, addr: str) -> None:
        published["thread"] = _in_thread(lambda: svc.publish(edge_id, b"welcome aboard", timeout=5.0))
        time.sleep(0.3)  # the publish reaches the gateway while this edge's admission is held

    svc.register_edge_online(online)
    edge = clients(Edge, gw.edge_addr)
    msg = edge.receive(timeout=3.0)  # not "after the next heartbeat": the default interval is 15 s
    assert msg.data == b"welcome aboard"
    msg.done()
    th, out = published["thread"]
    th.join(5)
    assert "error" not in out, out


def test_without_id_service_and_without_allocation_an_edge_needs_an_id(gateway_factory, clients):
    gw = gateway_factory({"edgebound": {"edgeid_alloc_when_no_idservice_on": False}})
    edge = clients(Edge, gw.edge_addr, edge_id=7)
    assert edge.edge_id == 7
    svc = clients(Service, gw.service_addr)
    edge.register("ping", lambda req: b"pong")
    assert svc.call(7, "ping", b"") == b"pong"
    with pytest.raises(Refused) as info:
        Edge(gw.edge_addr, timeout=5.0, reconnect=False)
    assert "edgeid_alloc_when_no_idservice_on" in str(info.value)


# -- heartbeats ------------------------------------------------------------------------------------


def test_silent_connection_is_closed_while_a_real_edge_stays(gateway_factory, clients):
    gw = gateway_factory({"limits": {"heartbeat_interval": 0.5}})
    svc = clients(Service, gw.service_addr)
    svc.register("m", lambda req: b"still here")
    edge = clients(Edge, gw.edge_addr, reconnect=False)
    edge.register("e", lambda req: b"edge here")
    idle_since = time.monotonic()

    with RawClient(gw.edge_addr) as raw:
        welcome = raw.hello_edge()
        assert welcome.heartbeat_interval == 0.5
        silent_since = time.monotonic()
        events = raw.read_until_closed(timeout=5.0)  # raises socket.timeout if never closed
        assert time.monotonic() - silent_since < 2.5
    assert any(isinstance(ev, GoAway) and ev.code == ErrorCode.TIMEOUT for ev in events), events

    time.sleep(max(0.0, 3.0 - (time.monotonic() - idle_since)))
    assert edge.connected
    assert svc.call(edge.edge_id, "e", b"") == b"edge here"
    assert edge.call("m", b"") == b"still here"


# -- hashby -----------------------------------------------------------------------------------------


def _who_services(clients, gw: GatewayProcess, seen: dict[int, set[str]]) -> None:
    lock = threading.Lock()
    for name in ("svc-a", "svc-b"):
        svc = clients(Service, gw.service_addr, name=name)

        def who(req, name=name):
            with lock:
                seen.setdefault(req.edge_id, set()).add(name)
            return name.encode()

        svc.register("who", who)


def test_hashby_edgeid_keeps_each_edge_on_one_service(gateway_factory, clients):
    gw = gateway_factory({"exchange": {"hashby": "edgeid"}})
    seen: dict[int, set[str]] = {}
    _who_services(clients, gw, seen)
    edges = [clients(Edge, gw.edge_addr) for _ in range(20)]
    for edge in edges:
        answers = {edge.call("who", b"") for _ in range(5)}
        assert len(answers) == 1, (edge.edge_id, answers)
    assert set(seen) == {e.edge_id for e in edges}
    assert all(len(names) == 1 for names in seen.values()), seen
    assert set().union(*seen.values()) == {"svc-a", "svc-b"}, "one service got no edge at all"


def test_hashby_random_spreads_calls(gateway_factory, clients):
    gw = gateway_factory({"exchange": {"hashby": "random"}})
    seen: dict[int, set[str]] = {}
    _who_services(clients, gw, seen)
    edge = clients(Edge, gw.edge_addr)
    answers = {edge.call("who", b"") for _ in range(40)}
    assert answers == {b"svc-a", b"svc-b"}


# -- head-of-line blocking ----------------------------------------------------------------------------


def test_slow_handler_blocks_nothing_else(gateway_factory, clients):
    gw = gateway_factory()
    slow_started = threading.Event()

    def slow(req):
        slow_started.set()
        time.sleep(3.0)
        return b"slow"

    svc_a = clients(Service, gw.service_addr, name="a")
    svc_a.register("slow", slow)
    svc_a.register("fast_a", lambda req: b"a")
    svc_b = clients(Service, gw.service_addr, name="b")
    svc_b.register("fast_b", lambda req: b"b")
    edge1 = clients(Edge, gw.edge_addr)
    edge2 = clients(Edge, gw.edge_addr)
    edge_slow_started = threading.Event()

    def edge_slow(req):
        edge_slow_started.set()
        time.sleep(3.0)
        return b"edge slow"

    edge1.register("slow_e", edge_slow)
    edge1.register("fast_e", lambda req: b"e")

    started = time.monotonic()
    slow_call, slow_out = _in_thread(lambda: edge1.call("slow", b"", timeout=10.0))
    slow_edge_call, slow_edge_out = _in_thread(lambda: svc_a.call(edge1.edge_id, "slow_e", b"", timeout=10.0))
    assert slow_started.wait(5) and edge_slow_started.wait(5)

    for _ in range(3):
        assert edge1.call("fast_a", b"", timeout=1.5) == b"a"  # same edge, same service
        assert edge1.call("fast_b", b"", timeout=1.5) == b"b"  # same edge, other service
        assert edge2.call("fast_a", b"", timeout=1.5) == b"a"  # other edge, same service
        assert svc_a.call(edge1.edge_id, "fast_e", b"", timeout=1.5) == b"e"  # into the busy edge
    assert time.monotonic() - started < 2.5
    assert slow_call.is_alive() and slow_edge_call.is_alive(), "the fast calls waited for the slow ones"

    slow_call.join(10)
    slow_edge_call.join(10)
    assert slow_out.get("value") == b"slow", slow_out
    assert slow_edge_out.get("value") == b"edge slow", slow_edge_out
