"""Every ControlPlane RPC over real gRPC (same port as REST), both backends."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
from cp_records import T0

from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stub(shared_cp):
    return pb_grpc.ControlPlaneStub(shared_cp.channel)


def call(method, request):
    return method(request, timeout=10)


def code_of(method, request):
    with pytest.raises(grpc.RpcError) as info:
        method(request, timeout=10)
    return info.value.code(), info.value.details()


def test_list_edges(stub):
    resp = call(stub.ListEdges, pb.ListEdgesRequest())
    assert resp.count == 12 and [e.edge_id for e in resp.edges] == list(range(12, 2, -1))
    e = resp.edges[0]
    assert (e.meta, e.addr, e.create_time, list(e.rpcs)) == ("sensor-12", "10.0.1.12:5012", T0 + 120, ["echo", "reboot"])
    resp = call(stub.ListEdges, pb.ListEdgesRequest(meta="dev", rpc="reboot", order="+edge_id"))
    assert [e.edge_id for e in resp.edges] == [4, 8] and resp.count == 2
    resp = call(stub.ListEdges, pb.ListEdgesRequest(page=2, page_size=4, order="edge_id"))
    assert [e.edge_id for e in resp.edges] == [5, 6, 7, 8] and resp.count == 12
    resp = call(stub.ListEdges, pb.ListEdgesRequest(addr="10.0.1.", order="-edge_id"))
    assert [e.edge_id for e in resp.edges] == [12, 11, 10]
    resp = call(stub.ListEdges, pb.ListEdgesRequest(start_time=T0 + 30, end_time=T0 + 60, order="create_time"))
    assert [e.edge_id for e in resp.edges] == [3, 4, 5] and resp.count == 3
    # presence matters: edge_id=0 is a filter, not "unset"
    assert call(stub.ListEdges, pb.ListEdgesRequest(edge_id=0)).count == 0
    assert call(stub.ListEdges, pb.ListEdgesRequest(edge_id=7)).edges[0].meta == "dev-7"


def test_get_edge(stub):
    assert call(stub.GetEdge, pb.GetEdgeRequest(edge_id=9)).meta == "sensor-9"
    assert code_of(stub.GetEdge, pb.GetEdgeRequest(edge_id=2**64 - 1)) == (
        grpc.StatusCode.NOT_FOUND,
        f"edge {2**64 - 1} is not online",
    )


def test_list_edge_rpcs(stub):
    assert list(call(stub.ListEdgeRPCs, pb.ListEdgeRPCsRequest()).rpcs) == ["reboot", "echo"]
    resp = call(stub.ListEdgeRPCs, pb.ListEdgeRPCsRequest(order="-rpc", page_size=1))
    assert list(resp.rpcs) == ["reboot"] and resp.count == 2
    assert call(stub.ListEdgeRPCs, pb.ListEdgeRPCsRequest(edge_id=3)).rpcs == ["echo"]
    assert call(stub.ListEdgeRPCs, pb.ListEdgeRPCsRequest(meta="nomatch")).count == 0


def test_list_services(stub):
    resp = call(stub.ListServices, pb.ListServicesRequest(service="billing", order="service_id"))
    assert [s.service_id for s in resp.services] == [101, 102, 104] and resp.count == 3
    s = resp.services[0]
    assert (s.service, s.addr, s.create_time, list(s.rpcs), list(s.topics)) == (
        "billing", "10.1.0.1:6001", T0 + 1, ["pay", "refund"], ["orders"],
    )
    resp = call(stub.ListServices, pb.ListServicesRequest(topic="orders", rpc="pay", order="-service_id"))
    assert [s.service_id for s in resp.services] == [102, 101]
    resp = call(stub.ListServices, pb.ListServicesRequest(service_id=105))
    assert [s.service for s in resp.services] == ["chat"]
    resp = call(stub.ListServices, pb.ListServicesRequest(order="service", page=3, page_size=2))
    assert [s.service_id for s in resp.services] == [105] and resp.count == 5


def test_get_service(stub):
    assert list(call(stub.GetService, pb.GetServiceRequest(service_id=103)).topics) == ["orders", "logs"]
    assert code_of(stub.GetService, pb.GetServiceRequest(service_id=1))[0] == grpc.StatusCode.NOT_FOUND


def test_list_service_rpcs_and_topics(stub):
    assert list(call(stub.ListServiceRPCs, pb.ListServiceRPCsRequest()).rpcs) == ["say", "pay", "refund"]
    resp = call(stub.ListServiceRPCs, pb.ListServiceRPCsRequest(service="billing", order="-rpc"))
    assert list(resp.rpcs) == ["refund", "pay"] and resp.count == 2
    assert list(call(stub.ListServiceRPCs, pb.ListServiceRPCsRequest(service_id=105)).rpcs) == ["say"]
    resp = call(stub.ListServiceTopics, pb.ListServiceTopicsRequest(order="topic"))
    assert list(resp.topics) == ["logs", "messages", "orders"] and resp.count == 3
    resp = call(stub.ListServiceTopics, pb.ListServiceTopicsRequest(service_id=103, order="-topic", page_size=1))
    assert list(resp.topics) == ["orders"] and resp.count == 2


@pytest.mark.parametrize(
    "rpc, request_",
    [
        ("ListEdges", pb.ListEdgesRequest(page=-1)),
        ("ListEdges", pb.ListEdgesRequest(page_size=-1)),
        ("ListEdges", pb.ListEdgesRequest(page_size=5000)),
        ("ListEdges", pb.ListEdgesRequest(order="-bogus")),
        ("ListEdges", pb.ListEdgesRequest(start_time=-1)),
        ("ListEdges", pb.ListEdgesRequest(page=2**62)),  # its offset would overflow int64
        ("ListEdgeRPCs", pb.ListEdgeRPCsRequest(order="meta")),
        ("ListServices", pb.ListServicesRequest(order="topic")),
        ("ListServiceRPCs", pb.ListServiceRPCsRequest(end_time=-2)),
        ("ListServiceTopics", pb.ListServiceTopicsRequest(order="rpc")),
    ],
)
def test_bad_input_is_invalid_argument(stub, rpc, request_):
    code, details = code_of(getattr(stub, rpc), request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details


def test_kick_edge_and_service(fresh_cp):
    stub = pb_grpc.ControlPlaneStub(fresh_cp.channel)
    assert call(stub.KickEdge, pb.KickEdgeRequest(edge_id=6)) == pb.KickEdgeResponse()
    assert fresh_cp.kicks() == ["edge 6"]
    assert code_of(stub.GetEdge, pb.GetEdgeRequest(edge_id=6))[0] == grpc.StatusCode.NOT_FOUND
    assert code_of(stub.KickEdge, pb.KickEdgeRequest(edge_id=6))[0] == grpc.StatusCode.NOT_FOUND
    assert call(stub.ListEdges, pb.ListEdgesRequest()).count == 11
    assert call(stub.KickService, pb.KickServiceRequest(service_id=101)) == pb.KickServiceResponse()
    assert code_of(stub.KickService, pb.KickServiceRequest(service_id=101))[0] == grpc.StatusCode.NOT_FOUND
    assert fresh_cp.kicks() == ["edge 6", "edge 6", "service 101", "service 101"]
    # REST on the same port sees the same state
    assert fresh_cp.get("/v1/services/101").status_code == 404


def test_grpc_and_rest_concurrently(shared_cp):
    """50 gRPC callers and 20 REST callers at once through the one sniffed port."""
    stub = pb_grpc.ControlPlaneStub(shared_cp.channel)
    url = shared_cp.url

    def grpc_calls(_):
        return sum(call(stub.ListEdges, pb.ListEdgesRequest(page_size=3)).count for _ in range(10))

    def rest_calls(_):
        with requests.Session() as s:
            return sum(s.get(url + "/v1/edges", timeout=10).json()["count"] for _ in range(10))

    start = time.monotonic()
    with ThreadPoolExecutor(70) as pool:
        g = list(pool.map(grpc_calls, range(50)))
        r = list(pool.map(rest_calls, range(20)))
    assert g == [120] * 50 and r == [120] * 20
    assert time.monotonic() - start < 60


def test_new_channels_each_call(shared_cp):
    """Many short gRPC connections: each one is sniffed and spliced afresh."""
    for _ in range(20):
        with grpc.insecure_channel(f"127.0.0.1:{shared_cp.port}") as ch:
            assert call(pb_grpc.ControlPlaneStub(ch).GetEdge, pb.GetEdgeRequest(edge_id=1)).edge_id == 1


def _recv_frame_header(sock):
    data = b""
    while len(data) < 9:
        chunk = sock.recv(9 - len(data))
        assert chunk, "connection closed before an HTTP/2 frame"
        data += chunk
    return data


def test_http2_preface_split_across_packets(shared_cp):
    """The sniffer waits for the whole preface when it arrives in pieces."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with socket.create_connection(("127.0.0.1", shared_cp.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(preface[:3])
        time.sleep(0.05)
        s.sendall(preface[3:11])
        time.sleep(0.05)
        s.sendall(preface[11:] + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # + empty SETTINGS
        header = _recv_frame_header(s)
        assert header[3] == 0x04  # the gRPC server answers with its SETTINGS frame


def test_http1_starting_like_the_preface(shared_cp):
    """"P" alone could be the preface; "PO" cannot: that is HTTP/1."""
    with socket.create_connection(("127.0.0.1", shared_cp.port), timeout=10) as s:
        s.sendall(b"P")
        time.sleep(0.05)
        s.sendall(b"OST /v1/edges HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 405")


def test_silent_and_closing_connections_do_not_hurt(shared_cp):
    for _ in range(5):
        socket.create_connection(("127.0.0.1", shared_cp.port), timeout=5).close()
    idle = socket.create_connection(("127.0.0.1", shared_cp.port), timeout=5)
    try:
        assert shared_cp.get("/healthz").status_code == 200
    finally:
        idle.close()
