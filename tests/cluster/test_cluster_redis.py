"""Frontlas against a Redis of the test's own: a Redis restart (all data lost) heals
by itself, and reports are batched (no Redis write per edge or per edge heartbeat)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from frontier.sdk import ClusterService, Edge, Service
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import RedisServer, new_prefix, start_all, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def private(tmp_path: Path, own_redis: RedisServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path, new_prefix(), redis_addr=own_redis.addr)
    yield c
    c.close()


def _evalsha_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(stats.get("cmdstat_eval", {}).get("calls", 0))


def test_redis_restart_heals(private: Cluster, own_redis: RedisServer) -> None:
    fl = private.frontlas()
    start_all([private.frontier("h1", start=False), private.frontier("h2", start=False)])
    private.wait_registered("h1", "h2")
    h1, h2 = private.frontiers["h1"], private.frontiers["h2"]
    edges = [private.client(Edge, gw.edge_addr) for gw in (h1, h2, h1, h2, h1)]
    private.client(Service, h2.service_addr, name="svc")
    want = {e.edge_id: fid for e, fid in zip(edges, ["h1", "h2", "h1", "h2", "h1"])}
    wait_until(lambda: fl.edges() == want, 10, what="edges reported")
    cluster_svc = private.client(ClusterService, fl.rest_addr, refresh_interval=0.2)
    sampled: list[list[str]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            sampled.append(cluster_svc.frontiers)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    own_redis.kill()
    # Frontlas answers 503 meanwhile; the frontiers keep serving
    wait_until(lambda: _status(fl, "/cluster/v1/edges/count") == 503, 5, what="Frontlas reports Redis down")
    svc = private.client(Service, h1.service_addr, name="during")
    edges[0].register("ping", lambda req: b"pong")
    assert svc.call(edges[0].edge_id, "ping", b"") == b"pong"
    late = private.client(Edge, h2.edge_addr)  # joins while Redis is down
    want[late.edge_id] = "h2"

    time.sleep(1.5)  # long enough for reports to fail (Frontlas answers BROKER_UNAVAILABLE) and back off
    own_redis.start()  # same port, empty
    wait_until(lambda: fl.edges() == want, 10, what="the frontiers re-report everything")
    counts = {fid: f["service_count"] for fid, f in fl.frontiers().items()}
    assert counts == {"h1": 2, "h2": 2}  # with the ClusterService's connections
    sampling.set()
    sampler.join(5)
    # the service never dropped a live frontier while Redis was empty
    assert sampled and all(seen == ["h1", "h2"] for seen in sampled), sorted(set(map(tuple, sampled)))
    edges[0].register("ping2", lambda req: b"still")
    assert cluster_svc.call(edges[0].edge_id, "ping2", b"") == b"still"


def _status(fl, path: str) -> int:
    import urllib.error

    try:
        fl.get(path)
        return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def test_reports_are_batched(private: Cluster, own_redis: RedisServer) -> None:
    fl = private.frontlas()
    # edges ping every 0.5 s here: 150 edges send 300 heartbeats a second to the frontier
    gw = private.frontier("b1", extra={"limits": {"heartbeat_interval": 0.5}})
    private.wait_registered("b1")
    before = _evalsha_calls(own_redis)

    edges: list[Edge] = []
    lock = threading.Lock()

    def connect(n: int) -> None:
        for _ in range(n):
            edge = Edge(gw.edge_addr, timeout=10)
            with lock:
                edges.append(edge)

    threads = [threading.Thread(target=connect, args=(30,)) for _ in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(edges) == 150
        wait_until(lambda: fl.get("/cluster/v1/edges/count")["count"] == 150, 10, what="all edges reported")
        burst = _evalsha_calls(own_redis) - before
        assert burst < 150 / 2, f"{burst} script calls for 150 edges coming online"

        quiet_start = _evalsha_calls(own_redis)
        time.sleep(3)  # 900 edge heartbeats reach the frontier meanwhile
        quiet = _evalsha_calls(own_redis) - quiet_start
        assert quiet <= 3 * 2 + 4, f"{quiet} script calls in 3 s of edge heartbeats"  # one report a second, two scripts each
    finally:
        for edge in edges:
            edge.close()
    wait_until(lambda: fl.get("/cluster/v1/edges/count")["count"] == 0, 10, what="all edges gone")
