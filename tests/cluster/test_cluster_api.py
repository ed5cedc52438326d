"""The cluster API on :40011, REST and gRPC, over two real frontiers reporting to Frontlas."""

from __future__ import annotations

import urllib.error
from typing import Any, Iterator

import grpc
import pytest

from frontier.sdk import Edge, Service
from frontlas.proto import cluster_pb2 as pb
from frontlas.proto import cluster_pb2_grpc as pb_grpc
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import drop_prefix, new_prefix, start_all, wait_until

pytestmark = pytest.mark.timeout(120)


class Pair:
    """Frontiers f1 (7 edges, 1 service) and f2 (4 edges, 2 services)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.fl = cluster.frontlas()
        start_all([cluster.frontier("f1", start=False), cluster.frontier("f2", start=False)])
        cluster.wait_registered("f1", "f2")
        f1, f2 = cluster.frontiers["f1"], cluster.frontiers["f2"]
        self.edges = {
            "f1": [cluster.client(Edge, f1.edge_addr) for _ in range(7)],
            "f2": [cluster.client(Edge, f2.edge_addr) for _ in range(4)],
        }
        self.services = {
            "f1": [cluster.client(Service, f1.service_addr, name="alpha", topics=["t1"])],
            "f2": [cluster.client(Service, f2.service_addr, name="beta"), cluster.client(Service, f2.service_addr, name="gamma")],
        }
        self.services["f1"][0].register("m1", lambda req: b"")
        self.edge_fid = {e.edge_id: fid for fid, es in self.edges.items() for e in es}
        wait_until(lambda: self.fl.get("/cluster/v1/edges/count")["count"] == 11
                   and self.fl.get("/cluster/v1/services/count")["count"] == 3
                   and self.fl.edges() == self.edge_fid, 10, what="everything reported")
        self.channel = grpc.insecure_channel(self.fl.rest_addr)
        self.stub = pb_grpc.ClusterServiceStub(self.channel)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, shared_redis: Any) -> Iterator[Pair]:
    prefix = new_prefix()
    cluster = Cluster(tmp_path_factory.mktemp("pair"), prefix)
    try:
        p = Pair(cluster)
        yield p
        p.channel.close()
    finally:
        cluster.close()
        drop_prefix(shared_redis, prefix)


def _http_error(pair: Pair, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    import json

    with pytest.raises(urllib.error.HTTPError) as info:
        pair.fl.get(path, **params)
    return info.value.code, json.loads(info.value.read())


# -- REST -------------------------------------------------------------------------------------


def test_rest_list_frontiers(pair: Pair) -> None:
    listed = pair.fl.frontiers()
    assert set(listed) == {"f1", "f2"}
    for fid, gw in pair.cluster.frontiers.items():
        f = listed[fid]
        assert (f["advertised_sb_addr"], f["advertised_eb_addr"]) == (gw.service_addr, gw.edge_addr)
    assert (listed["f1"]["edge_count"], listed["f1"]["service_count"]) == (7, 1)
    assert (listed["f2"]["edge_count"], listed["f2"]["service_count"]) == (4, 2)


def test_rest_list_frontiers_paged_and_filtered(pair: Pair) -> None:
    first = pair.fl.get("/cluster/v1/frontiers", cursor=0, count=1)
    assert len(first["frontiers"]) == 1 and first["cursor"] != 0
    second = pair.fl.get("/cluster/v1/frontiers", cursor=first["cursor"], count=1)
    assert len(second["frontiers"]) == 1 and second["cursor"] == 0
    assert {first["frontiers"][0]["frontier_id"], second["frontiers"][0]["frontier_id"]} == {"f1", "f2"}
    e1, e2 = pair.edges["f1"][0].edge_id, pair.edges["f2"][0].edge_id
    by_edges = pair.fl.get("/cluster/v1/frontiers", edge_ids=f"{e2},{e1}&edge_ids=99")["frontiers"]
    assert [f and f["frontier_id"] for f in by_edges] == ["f2", "f1", None]
    by_ids = pair.fl.get("/cluster/v1/frontiers", frontier_ids="f2,nope")["frontiers"]
    assert [f["frontier_id"] for f in by_ids] == ["f2"]


def test_rest_frontier_by_edge(pair: Pair) -> None:
    for edge_id, fid in pair.edge_fid.items():
        assert pair.fl.get("/cluster/v1/frontier", edge_id=edge_id)["frontier"]["frontier_id"] == fid
    code, body = _http_error(pair, "/cluster/v1/frontier", edge_id=42)
    assert (code, body["reason"]) == (404, "EDGE_NOT_ONLINE")
    code, body = _http_error(pair, "/cluster/v1/frontier")
    assert (code, body["reason"]) == (400, "INVALID_ARGUMENT")


def test_rest_edges_paged_with_cursor_and_count(pair: Pair) -> None:
    seen, cursor, pages = [], 0, 0
    while True:
        page = pair.fl.get("/cluster/v1/edges", cursor=cursor, count=3)
        seen += page["edges"]
        cursor, pages = page["cursor"], pages + 1
        if cursor == 0:
            break
    assert pages >= 2  # the two frontiers' edges are never one page of 3
    assert {e["edge_id"]: e["frontier_id"] for e in seen} == pair.edge_fid
    assert len(seen) == 11
    for e in seen:
        assert e["addr"].startswith("127.0.0.1:") and e["update_time"] > 0


def test_rest_edges_by_id_and_one_edge(pair: Pair) -> None:
    ids = list(pair.edge_fid)[:3]
    got = pair.fl.get("/cluster/v1/edges", edge_ids=",".join(map(str, [*ids, 7])))["edges"]
    assert [g and g["edge_id"] for g in got] == [*ids, None]
    one = pair.fl.get("/cluster/v1/edge", edge_id=ids[0])["edge"]
    assert (one["edge_id"], one["frontier_id"]) == (ids[0], pair.edge_fid[ids[0]])
    assert _http_error(pair, "/cluster/v1/edge", edge_id=7)[0] == 404


def test_rest_counts(pair: Pair) -> None:
    assert pair.fl.get("/cluster/v1/edges/count") == {"count": 11}
    assert pair.fl.get("/cluster/v1/services/count") == {"count": 3}


def test_rest_services(pair: Pair) -> None:
    services, cursor = [], 0
    while True:
        page = pair.fl.get("/cluster/v1/services", cursor=cursor, count=1)
        services += page["services"]
        cursor = page["cursor"]
        if cursor == 0:
            break
    by_name = {s["service"]: s for s in services}
    assert set(by_name) == {"alpha", "beta", "gamma"}
    assert (by_name["alpha"]["frontier_id"], by_name["alpha"]["topics"], by_name["alpha"]["rpcs"]) == ("f1", ["t1"], ["m1"])
    alpha = by_name["alpha"]
    one = pair.fl.get("/cluster/v1/service", service_id=alpha["service_id"], frontier_id="f1")["service"]
    assert one == alpha
    assert _http_error(pair, "/cluster/v1/service", service_id=999)[0] == 404
    listed = pair.fl.get("/cluster/v1/services", service_ids=str(alpha["service_id"]))["services"]
    assert listed[0]["service_id"] == alpha["service_id"]


def test_rest_bad_input(pair: Pair) -> None:
    for path, params in [("/cluster/v1/edges", {"cursor": "x"}), ("/cluster/v1/edges", {"count": 10001, "cursor": 0}),
                         ("/cluster/v1/edges", {"bogus": 1}), ("/cluster/v1/edges/count", {"a": 1}),
                         ("/cluster/v1/edge", {"edge_id": -1})]:
        code, body = _http_error(pair, path, **params)
        assert (code, body["reason"]) == (400, "INVALID_ARGUMENT"), (path, params, body)


def test_rest_health(pair: Pair) -> None:
    assert pair.fl.get("/cluster/v1/health") == {"status": "SERVING"}
    assert pair.fl.get("/healthz") == {"status": "ok"}
    assert pair.fl.get("/readyz") == {"status": "ready"}


# -- gRPC (same port) -----------------------------------------------------------------------------


def test_grpc_frontiers(pair: Pair) -> None:
    resp = pair.stub.ListFrontiers(pb.ListFrontiersRequest(), timeout=10)
    assert {f.frontier_id: f.edge_count for f in resp.frontiers} == {"f1": 7, "f2": 4}
    assert not resp.HasField("cursor")
    page = pair.stub.ListFrontiers(pb.ListFrontiersRequest(cursor=0, count=5), timeout=10)
    assert page.HasField("cursor") and page.cursor == 0 and len(page.frontiers) == 2
    edge_id, fid = next(iter(pair.edge_fid.items()))
    got = pair.stub.GetFrontierByEdge(pb.GetFrontierByEdgeIDRequest(edge_id=edge_id), timeout=10)
    assert got.frontier.frontier_id == fid
    assert got.frontier.advertised_sb_addr == pair.cluster.frontiers[fid].service_addr
    with pytest.raises(grpc.RpcError) as info:
        pair.stub.GetFrontierByEdge(pb.GetFrontierByEdgeIDRequest(edge_id=1), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_edges(pair: Pair) -> None:
    seen, cursor = {}, 0
    while True:
        page = pair.stub.ListEdges(pb.ListClusterEdgesRequest(cursor=cursor, count=4), timeout=10)
        seen.update({e.edge_id: e.frontier_id for e in page.edges})
        cursor = page.cursor
        if cursor == 0:
            break
    assert seen == pair.edge_fid
    ids = list(pair.edge_fid)[:2]
    by_id = pair.stub.ListEdges(pb.ListClusterEdgesRequest(edge_ids=[*ids, 5]), timeout=10)
    assert [e.edge_id for e in by_id.edges] == [*ids, 0]  # an unknown edge is an empty record
    one = pair.stub.GetEdgeByID(pb.GetEdgeByIDRequest(edge_id=ids[0]), timeout=10)
    assert (one.edge.edge_id, one.edge.frontier_id) == (ids[0], pair.edge_fid[ids[0]])
    assert pair.stub.GetEdgesCount(pb.GetEdgesCountRequest(), timeout=10).count == 11


def test_grpc_services(pair: Pair) -> None:
    page = pair.stub.ListServices(pb.ListClusterServicesRequest(cursor=0, count=100), timeout=10)
    names = {s.service: s for s in page.services}
    assert set(names) == {"alpha", "beta", "gamma"} and page.cursor == 0
    beta = names["beta"]
    one = pair.stub.GetServiceByID(pb.GetServiceByIDRequest(service_id=beta.service_id, frontier_id="f2"), timeout=10)
    assert (one.service.service, one.service.frontier_id) == ("beta", "f2")
    assert pair.stub.GetServicesCount(pb.GetServicesCountRequest(), timeout=10).count == 3
    with pytest.raises(grpc.RpcError) as info:
        pair.stub.ListEdges(pb.ListClusterEdgesRequest(cursor=0, count=100000), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_health(pair: Pair) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    go = pb_grpc.HealthStub(pair.channel).Check(pb.HealthCheckRequest(), timeout=10)
    assert go.status == pb.HealthCheckResponse.SERVING
    std = health_pb2_grpc.HealthStub(pair.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert std.status == health_pb2.HealthCheckResponse.SERVING


def test_an_edge_going_offline_leaves_the_lists(pair: Pair) -> None:
    edge = pair.edges["f2"].pop()
    edge.close()
    wait_until(lambda: edge.edge_id not in pair.fl.edges(), 5, what="the closed edge leaves the list")
    assert pair.fl.get("/cluster/v1/edges/count")["count"] == 10
    assert pair.fl.frontiers()["f2"]["edge_count"] == 3
