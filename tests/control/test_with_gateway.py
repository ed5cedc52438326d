"""The control plane inside the real gateway, with real SDK clients connected."""

from __future__ import annotations

import time

import grpc
import pytest
import requests

from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from frontier.sdk import Edge, Service
from tests.gateway import GatewayProcess

pytestmark = pytest.mark.timeout(120)

TOKEN = "integration-token"


def eventually(fn, timeout=10.0):
    """``fn()`` once it stops raising AssertionError (the store follows the sessions)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("backend", ["buntdb", "sqlite3"])
def test_sessions_show_up_and_kicks_close_them(tmp_path, backend):
    config = {"dao": {"backend": backend}, "controlplane": {"auth": {"bearer_tokens": [TOKEN]}}}
    with GatewayProcess(tmp_path, config, control=True) as gw:
        base = f"http://{gw.control_addr}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        # no reconnect: a kicked client must stay gone for the checks below
        svc = Service(gw.service_addr, name="billing", topics=["orders"], timeout=5.0, reconnect=False)
        svc.register("pay", lambda data: b"ok")
        edge = Edge(gw.edge_addr, meta=b"dev-integration", timeout=5.0, reconnect=False)
        edge.register("reboot", lambda data: b"")
        try:
            def edge_listed():
                body = requests.get(f"{base}/v1/edges", params={"meta": "dev-"}, headers=auth, timeout=5).json()
                assert body["count"] == 1, body
                return body["edges"][0]

            listed = eventually(edge_listed)
            assert listed["edge_id"] == edge.edge_id and listed["meta"] == "dev-integration"
            assert listed["addr"].startswith("127.0.0.1:")
            assert abs(listed["create_time"] - time.time()) < 60
            eventually(lambda: _assert_eq(
                requests.get(f"{base}/v1/edges/rpcs", headers=auth, timeout=5).json()["rpcs"], ["reboot"]))

            channel = grpc.insecure_channel(gw.control_addr)
            stub = pb_grpc.ControlPlaneStub(channel)
            md = [("authorization", f"Bearer {TOKEN}")]

            def service_listed():
                resp = stub.ListServices(pb.ListServicesRequest(service="billing"), timeout=5, metadata=md)
                assert resp.count == 1 and "pay" in resp.services[0].rpcs, resp
                return resp.services[0]

            listed_svc = eventually(service_listed)
            assert listed_svc.service_id == svc.service_id and list(listed_svc.topics) == ["orders"]
            topics = stub.ListServiceTopics(pb.ListServiceTopicsRequest(), timeout=5, metadata=md)
            assert list(topics.topics) == ["orders"]

            # kick the edge over REST: the gateway closes it and the store forgets it
            resp = requests.delete(f"{base}/v1/edges/{edge.edge_id}", headers=auth, timeout=5)
            assert resp.status_code == 200, resp.text
            eventually(lambda: _assert_eq(
                requests.get(f"{base}/v1/edges/{edge.edge_id}", headers=auth, timeout=5).status_code, 404))
            # kick the service over gRPC
            stub.KickService(pb.KickServiceRequest(service_id=svc.service_id), timeout=5, metadata=md)
            eventually(lambda: _assert_eq(requests.get(
                f"{base}/v1/services", params={"service_id": svc.service_id}, headers=auth, timeout=5
            ).json()["count"], 0))
            with pytest.raises(grpc.RpcError) as info:
                stub.KickEdge(pb.KickEdgeRequest(edge_id=2**63), timeout=5, metadata=md)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            channel.close()

            assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
            metrics = requests.get(f"{base}/metrics", timeout=5).text
            assert "frontier_edges_connected" in metrics
            assert requests.get(f"{base}/v1/edges", timeout=5).status_code == 401
        finally:
            edge.close()
            svc.close()
    assert "Traceback" not in gw.log(), gw.log()


def _assert_eq(got, want):
    assert got == want, got
