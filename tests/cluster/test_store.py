"""Frontlas' Redis data model, driven directly: ordering and at-most-once of reports,
snapshots in chunks, duplicate ids, expiry, paging. Run against a standalone Redis
(the shared one, under a prefix) and a real three-node Redis Cluster, so a
cross-slot script or a KEYS would fail here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from frontier.cluster import protocol as P
from frontier.sdk import Edge
from frontlas.config import Expiration, FrontlasConfig
from frontlas.store import ClusterStore, redis_from_config
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import RedisClusterServers, drop_prefix, new_prefix, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield servers.start()
    finally:
        servers.stop()


@pytest.fixture(params=["standalone", "cluster"])
def store(request: pytest.FixtureRequest, shared_redis: redis.Redis) -> Iterator[ClusterStore]:
    prefix = new_prefix()
    if request.param == "standalone":
        client = redis_from_config(FrontlasConfig.from_dict({}).redis)
    else:
        servers = request.getfixturevalue("redis_cluster")
        client = redis_from_config(FrontlasConfig.from_dict({"redis": {"mode": "cluster", "cluster": {"addrs": servers.addrs}}}).redis)
    yield ClusterStore(client, Expiration(service_meta=2, edge_meta=2, frontier_meta=2), prefix=prefix)
    if request.param == "standalone":
        drop_prefix(shared_redis, prefix)
    else:
        for node_client in client.get_nodes():
            drop_prefix(node_client.redis_connection, prefix)
    client.close()


def inst(fid: str, session: str = "s1") -> P.Instance:
    return P.Instance(fid, session, f"{fid}-sb:1", f"{fid}-eb:2")


def registered(store: ClusterStore, fid: str, session: str = "s1", edges: list[Any] = (), services: list[Any] = ()) -> int:
    """Register ``fid`` and sync a snapshot; the next seq to use."""
    assert store.register(inst(fid, session))[0] == P.OK
    assert store.sync(fid, session, 1, first=True, last=True, edges=list(edges), services=list(services)).status == P.OK
    return 2


def test_register_refuses_a_live_duplicate(store: ClusterStore) -> None:
    assert store.register(inst("f1", "s1")) == (P.OK, 1)
    status, ttl = store.register(inst("f1", "s2"))
    assert status == P.CONFLICT and 0 < ttl <= 2
    assert store.register(inst("f1", "s1"))[0] == P.OK  # the same process re-registering is fine
    assert [f.advertised_sb_addr for f in store.frontiers()] == ["f1-sb:1"]


def test_reports_apply_once_and_in_order(store: ClusterStore) -> None:
    seq = registered(store, "f1", edges=[[1, "a:1", 10]])
    assert store.report("f1", "s1", seq, edges_on=[[2, "a:2", 11]]).status == P.OK
    again = store.report("f1", "s1", seq, edges_on=[[2, "a:2", 11]])
    assert (again.status, again.edge_count) == (P.STALE, 2)
    late = store.report("f1", "s1", seq - 1, edges_off=[1])  # an older copy arriving late
    assert late.status == P.STALE and store.find_edge(1) is not None
    assert store.report("f1", "s1", seq + 1, edges_off=[1]).status == P.OK
    assert store.find_edge(1) is None and store.count_edges() == 1


def test_reports_of_another_session_are_unknown(store: ClusterStore) -> None:
    registered(store, "f1")
    assert store.report("f1", "other", 9).status == P.UNKNOWN
    assert store.report("nobody", "s1", 9).status == P.UNKNOWN


def test_a_snapshot_is_invisible_until_its_last_chunk(store: ClusterStore) -> None:
    seq = registered(store, "f1", edges=[[1, "old", 1]])
    assert store.sync("f1", "s1", seq, first=True, last=False, edges=[[2, "x", 2]]).status == P.OK
    assert store.find_edge(1) is not None and store.find_edge(2) is None  # still the old view
    assert store.sync("f1", "s1", seq + 1, first=False, last=False, edges=[[3, "x", 2]]).status == P.OK
    assert store.sync("f1", "s1", seq + 1, first=False, last=False, edges=[[3, "x", 2]]).status == P.STALE  # a retry
    assert store.sync("f1", "s1", seq + 3, first=False, last=True).status == P.ABORT  # a gap
    assert store.sync("f1", "s1", seq + 2, first=False, last=True, services=[[7, "svc", "s:1", 3, ["m"], ["t"]]]).status == P.OK
    assert [e and e.edge_id for e in store.find_edges([1, 2, 3])] == [None, 2, 3]
    assert store.find_services([7])[0].rpcs == ("m",)
    assert store.sync("f1", "s1", seq + 2, first=False, last=True).status == P.STALE  # the last chunk retried
    assert store.count_edges() == 2 and store.count_services() == 1


def test_a_big_snapshot_goes_through_lua_in_slices(store: ClusterStore) -> None:
    rows = [[i, f"10.0.{i // 250}.{i % 250}:1", 5] for i in range(1, 5001)]
    registered(store, "f1", edges=rows)
    assert store.count_edges() == 5000
    assert store.report("f1", "s1", 2, edges_off=list(range(1, 4001))).edge_count == 1000


def test_everything_vanishes_with_the_frontier_ttl(store: ClusterStore) -> None:
    registered(store, "f1", edges=[[1, "a", 1]], services=[[1, "svc", "b", 1, [], []]])
    registered(store, "f2", edges=[[2, "a", 1]])
    for _ in range(3):
        time.sleep(0.8)
        assert store.report("f2", "s1", int(time.monotonic() * 1000)).status == P.OK  # f2 heartbeats, f1 is dead
    assert [f.frontier_id for f in store.frontiers()] == ["f2"]
    assert store.find_edge(1) is None and store.find_services([1]) == [None]
    assert store.count_edges() == 1 and store.scan_edges(0, 100)[0][0].edge_id == 2
    assert store.report("f1", "s1", 99).status == P.UNKNOWN  # f1 coming back must register again


def test_an_edge_that_moved_is_found_where_it_went_last(store: ClusterStore) -> None:
    registered(store, "f1", edges=[[5, "old-addr", 100]])
    registered(store, "f2", edges=[[5, "new-addr", 200]])
    found = store.find_edge(5)
    assert (found.frontier_id, found.addr) == ("f2", "new-addr")


def test_scan_pages_walk_every_frontier(store: ClusterStore) -> None:
    for n, fid in enumerate(["p1", "p2", "p3"]):
        registered(store, fid, edges=[[n * 1000 + i, "x", 1] for i in range(600)])  # past listpack size: real HSCAN
    seen, cursor, pages = [], 0, 0
    while True:
        items, cursor = store.scan_edges(cursor, 100)
        seen += [e.edge_id for e in items]
        pages += 1
        if cursor == 0:
            break
    assert set(seen) == {n * 1000 + i for n in range(3) for i in range(600)}
    assert pages >= 6


def test_unregister_needs_the_session(store: ClusterStore) -> None:
    registered(store, "f1", edges=[[1, "a", 1]])
    assert not store.unregister("f1", "intruder")
    assert store.frontiers()
    assert store.unregister("f1", "s1")
    assert store.frontiers() == [] and store.find_edge(1) is None


def test_frontlas_and_a_frontier_on_redis_cluster(tmp_path: Path, redis_cluster: RedisClusterServers) -> None:
    cluster = Cluster(tmp_path, new_prefix())
    try:
        fl = cluster.frontlas(extra={"redis": {"mode": "cluster", "cluster": {"addrs": redis_cluster.addrs}}})
        gw = cluster.frontier("rc1")
        cluster.wait_registered("rc1")
        edges = [cluster.client(Edge, gw.edge_addr) for _ in range(4)]
        wait_until(lambda: set(fl.edges()) == {e.edge_id for e in edges}, 10, what="edges listed from Redis Cluster")
        assert fl.get("/cluster/v1/frontier", edge_id=edges[0].edge_id)["frontier"]["frontier_id"] == "rc1"
    finally:
        cluster.close()
