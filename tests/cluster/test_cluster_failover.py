"""Failures in a cluster: frontiers killed or draining, Frontlas restarted or doubled,
a duplicate frontier id, a dead Frontlas (it must never block edges)."""

from __future__ import annotations

import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from frontier.sdk import Edge, FrontierError, Service
from frontier.sdk.cluster import ClusterEdge, ClusterService
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import TTL, kill9, start_all, wait_until

pytestmark = pytest.mark.timeout(120)


def _spread_edges(cluster: Cluster, rest_addr: str, per_frontier: int = 3) -> list[ClusterEdge]:
    """ClusterEdges until every frontier holds at least ``per_frontier`` of them."""
    edges: list[ClusterEdge] = []
    addrs = {gw.edge_addr for gw in cluster.frontiers.values()}
    for i in range(60):
        counts = {a: sum(e.frontier_addr == a for e in edges) for a in addrs}
        if min(counts.values()) >= per_frontier:
            return edges
        edge = cluster.client(ClusterEdge, rest_addr, meta=b"edge-%d" % i, timeout=5.0)
        edge.register("ping", lambda req, e=edge: b"pong:%d" % e.edge_id)
        edges.append(edge)
    raise AssertionError("edges did not spread over the frontiers")


def test_kill9_frontier_edges_move_and_the_service_reaches_them(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    start_all([cluster.frontier("k1", start=False), cluster.frontier("k2", start=False)])
    cluster.wait_registered("k1", "k2")
    k1, k2 = cluster.frontiers["k1"], cluster.frontiers["k2"]
    svc = cluster.client(ClusterService, fl.rest_addr, refresh_interval=1.0)
    edges = _spread_edges(cluster, fl.rest_addr)
    ids = {e.edge_id for e in edges}
    wait_until(lambda: set(fl.edges()) == ids, 10, what="edges reported")
    for edge in edges:
        assert svc.call(edge.edge_id, "ping", b"") == b"pong:%d" % edge.edge_id
    victims = [e for e in edges if e.frontier_addr == k1.edge_addr]

    killed_at = time.monotonic()
    kill9(k1)

    def moved() -> bool:
        return all(e.connected and e.frontier_addr == k2.edge_addr for e in victims)

    wait_until(moved, 10, what="the dead frontier's edges reconnect to the other one")
    for edge in victims:  # same ids, reached again through the survivor
        wait_until(lambda e=edge: svc.call(e.edge_id, "ping", b"", timeout=2) == b"pong:%d" % e.edge_id, 10 - (time.monotonic() - killed_at),
                   what=f"the service reaches edge {edge.edge_id} again")
    assert time.monotonic() - killed_at < 10
    assert {e.edge_id for e in edges} == ids

    wait_until(lambda: "k1" not in fl.frontiers(), TTL + 2, what="the dead frontier leaves ListFrontiers")
    assert time.monotonic() - killed_at <= TTL + 2
    wait_until(lambda: fl.edges() == {i: "k2" for i in ids}, 5, what="every edge listed on the survivor")
    wait_until(lambda: svc.frontiers == ["k2"], 5, what="the service drops the dead frontier")


def test_goaway_moves_edges_to_another_frontier(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    fast_drain = {"limits": {"drain_timeout": 1}}
    start_all([cluster.frontier("g1", start=False, extra=fast_drain), cluster.frontier("g2", start=False, extra=fast_drain)])
    cluster.wait_registered("g1", "g2")
    g1, g2 = cluster.frontiers["g1"], cluster.frontiers["g2"]
    svc = cluster.client(ClusterService, fl.rest_addr, refresh_interval=1.0)
    edges = _spread_edges(cluster, fl.rest_addr, per_frontier=2)
    victims = [e for e in edges if e.frontier_addr == g1.edge_addr]
    g1.proc.send_signal(signal.SIGTERM)  # drains: GOAWAY to every client, then unregisters
    wait_until(lambda: all(e.connected and e.frontier_addr == g2.edge_addr for e in victims), 10, what="edges leave on GOAWAY")
    assert g1.proc.wait(15) == 0
    assert "g1" not in fl.frontiers()  # a clean stop unregisters at once, no TTL wait
    for edge in victims:
        wait_until(lambda e=edge: svc.call(e.edge_id, "ping", b"", timeout=2), 10, what="reached after GOAWAY")


def test_frontlas_restart_loses_nothing(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    f1 = cluster.frontier("r1")
    cluster.wait_registered("r1")
    kept = [cluster.client(Edge, f1.edge_addr) for _ in range(3)]
    leaving = cluster.client(Edge, f1.edge_addr)
    svc = cluster.client(Service, f1.service_addr, name="s")
    wait_until(lambda: len(fl.edges()) == 4, 10, what="edges reported")

    fl.stop(signal.SIGKILL)
    # a dead Frontlas blocks no edge: connecting and calling stay fast
    started = time.monotonic()
    newcomer = cluster.client(Edge, f1.edge_addr)
    newcomer.register("ping", lambda req: b"pong")
    assert svc.call(newcomer.edge_id, "ping", b"") == b"pong"
    assert time.monotonic() - started < 1.0
    leaving.close()

    fl.start()  # same ports, same Redis
    want = {e.edge_id for e in [*kept, newcomer]}
    wait_until(lambda: set(fl.edges()) == want, 10, what="the restarted Frontlas lists exactly what the frontier holds")
    assert fl.frontiers()["r1"]["edge_count"] == 4
    assert fl.get("/cluster/v1/services/count")["count"] == 1


def test_two_frontlas_instances_serve_one_cluster(cluster: Cluster) -> None:
    fl1, fl2 = cluster.frontlas(), cluster.frontlas()
    f = cluster.frontier("t1", frontlas=[fl1, fl2])
    cluster.wait_registered("t1", fl=fl1)
    first = [cluster.client(Edge, f.edge_addr) for _ in range(2)]
    want = {e.edge_id for e in first}
    for fl in (fl1, fl2):  # stateless: both answer the same from Redis
        wait_until(lambda fl=fl: set(fl.edges()) == want, 10, what="both instances list the edges")
    fl1.stop(signal.SIGKILL)
    fl2.stop(signal.SIGKILL)
    fl2.start()  # the frontier may have been talking to either one: now only fl2 is up
    later = cluster.client(Edge, f.edge_addr)
    want.add(later.edge_id)
    wait_until(lambda: set(fl2.edges()) == want, 10, what="reports go on through the other instance")
    assert set(fl2.frontiers()) == {"t1"}


def test_duplicate_live_frontier_id_is_refused(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    first = cluster.frontier("dup", control=True, name="first")
    cluster.wait_registered("dup")
    second = cluster.frontier("dup", control=True, name="second")

    def ready(gw: Any) -> bool:
        try:
            with urllib.request.urlopen(f"http://{gw.control_addr}/readyz", timeout=5) as resp:
                return resp.status == 200
        except urllib.error.HTTPError:
            return False

    wait_until(lambda: "another live frontier holds it" in second.log(), 10, what="the second is refused")
    assert fl.frontiers()["dup"]["advertised_sb_addr"] == first.service_addr
    assert ready(first) and not ready(second)  # readiness includes "registered with Frontlas"

    killed_at = time.monotonic()
    kill9(first)
    wait_until(lambda: fl.frontiers().get("dup", {}).get("advertised_sb_addr") == second.service_addr, TTL + 5,
               what="the id is free once the first one's registration expired")
    assert time.monotonic() - killed_at >= TTL - 1.5  # not before the dead one's TTL ran out
    wait_until(lambda: ready(second), 5, what="the second becomes ready")


def test_unreachable_frontlas_never_blocks_edges(cluster: Cluster) -> None:
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)  # accepts TCP but never answers a handshake
    try:
        addr = "%s:%d" % blackhole.getsockname()
        started = time.monotonic()
        gw = cluster.frontier("lonely", extra={"frontlas": {"dial": {"addrs": [addr]}}})
        svc = cluster.client(Service, gw.service_addr, name="s")
        svc.register("echo", lambda req: req.data)
        edges = []
        for _ in range(20):
            edge = cluster.client(Edge, gw.edge_addr)
            edge.register("ping", lambda req: b"pong")
            edges.append(edge)
        for edge in edges:
            assert edge.call("echo", b"x") == b"x"
            assert svc.call(edge.edge_id, "ping", b"") == b"pong"
        assert time.monotonic() - started < 5.0  # process start included
    finally:
        blackhole.close()


def test_cluster_service_follows_frontiers_joining(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    cluster.frontier("j1")
    cluster.wait_registered("j1")
    svc = cluster.client(ClusterService, fl.rest_addr, refresh_interval=0.5)
    assert svc.frontiers == ["j1"]
    j2 = cluster.frontier("j2")
    edge = cluster.client(Edge, j2.edge_addr)
    edge.register("ping", lambda req: b"from j2")
    wait_until(lambda: svc.frontiers == ["j1", "j2"], 10, what="the new frontier is connected")
    assert svc.call(edge.edge_id, "ping", b"") == b"from j2"


def test_cluster_service_keeps_a_frontier_cut_off_from_frontlas(cluster: Cluster) -> None:
    """A frontier that cannot report (its Frontlas is gone) leaves the list, but it still
    holds edges: a service connected to it keeps it and keeps reaching them."""
    listing, reporting = cluster.frontlas(), cluster.frontlas()  # one Redis prefix, two instances
    cluster.frontier("cut", frontlas=[reporting])
    cluster.wait_registered("cut", fl=listing)
    svc = cluster.client(ClusterService, listing.rest_addr, name="s", refresh_interval=0.3)
    svc.register("echo", lambda req: req.data)
    edge = cluster.client(Edge, cluster.frontiers["cut"].edge_addr)
    edge.register("ping", lambda req: b"pong")
    reporting.stop(signal.SIGKILL)
    wait_until(lambda: "cut" not in listing.frontiers(), TTL + 5, what="the frontier leaves the list")
    time.sleep(5 * svc.refresh_interval)  # several refreshes without it
    assert svc.frontiers == ["cut"]
    assert svc.call(edge.edge_id, "ping", b"") == b"pong"
    assert edge.call("echo", b"up") == b"up"


def test_a_frontier_the_service_cannot_reach_costs_a_call_no_more_than_its_timeout(cluster: Cluster) -> None:
    """Frontlas names a frontier new to the service that does not answer (here: its
    advertised service address accepts TCP and never speaks); connecting to it is
    bounded by the call's own deadline, not by ``connect_timeout``."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)
    try:
        fl = cluster.frontlas()
        mute = cluster.frontier("mute", extra={"servicebound": {"listen": {"advertised_addr": "%s:%d" % blackhole.getsockname()}}})
        cluster.wait_registered("mute")
        edge = cluster.client(Edge, mute.edge_addr)
        wait_until(lambda: edge.edge_id in fl.edges(), 10, what="the edge is reported")
        svc = cluster.client(ClusterService, fl.rest_addr, name="s", refresh_interval=60.0)
        svc.connect_timeout = 5.0
        started = time.monotonic()
        with pytest.raises(FrontierError):
            svc.call(edge.edge_id, "ping", b"", timeout=0.5)
        assert time.monotonic() - started < 1.5
    finally:
        blackhole.close()


def test_concurrent_calls_during_failover_never_hang(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    start_all([cluster.frontier("c1", start=False), cluster.frontier("c2", start=False)])
    cluster.wait_registered("c1", "c2")
    svc = cluster.client(ClusterService, fl.rest_addr, refresh_interval=1.0)
    edges = _spread_edges(cluster, fl.rest_addr, per_frontier=2)
    stop = threading.Event()
    outcomes: list[tuple[float, str]] = []

    def hammer(edge: ClusterEdge) -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                svc.call(edge.edge_id, "ping", b"", timeout=2)
                outcomes.append((time.monotonic() - t0, "ok"))
            except Exception as exc:  # noqa: BLE001 - every outcome is recorded
                outcomes.append((time.monotonic() - t0, type(exc).__name__))
                time.sleep(0.05)

    threads = [threading.Thread(target=hammer, args=(e,), daemon=True) for e in edges]
    for t in threads:
        t.start()
    time.sleep(0.5)
    kill9(cluster.frontiers["c1"])
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(5)
    assert all(elapsed < 2.5 for elapsed, _ in outcomes), max(outcomes)
    assert [o for _, o in outcomes[-len(edges):]] == ["ok"] * len(edges)  # healed by the end


def test_a_plain_edge_with_a_list_of_frontiers_fails_over_keeping_its_id(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    start_all([cluster.frontier("l1", start=False), cluster.frontier("l2", start=False)])
    cluster.wait_registered("l1", "l2")
    l1, l2 = cluster.frontiers["l1"], cluster.frontiers["l2"]
    svc = cluster.client(ClusterService, fl.rest_addr, refresh_interval=1.0)
    edge = cluster.client(Edge, [l1.edge_addr, l2.edge_addr])
    edge.register("ping", lambda req: b"pong")
    edge_id = edge.edge_id
    assert svc.call(edge_id, "ping", b"") == b"pong"
    kill9(l1)
    wait_until(lambda: edge.connected, 10, what="the edge reconnects to the next address")
    assert edge.edge_id == edge_id
    wait_until(lambda: fl.get("/cluster/v1/frontier", edge_id=edge_id)["frontier"]["frontier_id"] == "l2", 10,
               what="Frontlas sees the edge on l2")
    assert svc.call(edge_id, "ping", b"", timeout=5) == b"pong"
