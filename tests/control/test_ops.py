"""Health, readiness, metrics, auth, reflection, OpenAPI and shutdown of the control plane."""

from __future__ import annotations

import json
import socket
import time

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from frontier.control import params as P
from frontier.control.openapi import openapi_document
from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(120)

SERVICE = "controlplane.ControlPlane"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def health_status(channel, service="", metadata=None):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10, metadata=metadata).status


def reflected_services(channel, metadata=None):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    (resp,) = list(stub.ServerReflectionInfo(iter([req]), timeout=10, metadata=metadata))
    return {s.name for s in resp.list_services_response.service}


# -- health, readiness ------------------------------------------------------------------


def test_healthz_and_readiness(start):
    cp = start(ready_file=True)
    assert cp.get("/healthz").status_code == 200
    resp = cp.get("/readyz")
    assert resp.status_code == 503 and resp.json()["reason"] == "NOT_READY"
    assert health_status(cp.channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert health_status(cp.channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING

    cp.ready_file.touch()
    assert cp.get("/readyz").status_code == 200
    assert health_status(cp.channel) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(cp.channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING


def test_health_watch_follows_readiness(start):
    cp = start(ready_file=True)
    stub = health_pb2_grpc.HealthStub(cp.channel)
    stream = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
    assert next(stream).status == health_pb2.HealthCheckResponse.NOT_SERVING
    cp.ready_file.touch()
    assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
    stream.cancel()


def test_health_service_answers_serving(shared_cp):
    assert health_status(shared_cp.channel) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        health_status(shared_cp.channel, "no.such.Service")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


# -- metrics -----------------------------------------------------------------------------


def test_metrics_parse(shared_cp):
    resp = shared_cp.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    for name in ("frontier_edges_connected", "frontier_services_connected", "frontier_calls",
                 "frontier_call_duration_seconds", "frontier_mq_produce"):
        assert name in families, sorted(families)
    assert families["frontier_edges_connected"].type == "gauge"


# -- reflection ------------------------------------------------------------------------------


def test_reflection_lists_the_services(shared_cp):
    names = reflected_services(shared_cp.channel)
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    stub = reflection_pb2_grpc.ServerReflectionStub(shared_cp.channel)
    req = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
    (resp,) = list(stub.ServerReflectionInfo(iter([req]), timeout=10))
    assert resp.file_descriptor_response.file_descriptor_proto  # grpcurl can describe it


# -- auth --------------------------------------------------------------------------------------


def test_auth_rest(start):
    cp = start(tokens="alpha,beta")
    for path in ("/v1/edges", "/v1/edges/1", "/v1/edges/rpcs", "/v1/services", "/v1/services/101",
                 "/v1/services/rpcs", "/v1/services/topics", "/openapi.json", "/nope"):
        resp = cp.get(path)
        assert resp.status_code == 401, path
        assert resp.json() == {"code": 401, "reason": "UNAUTHORIZED", "message": "missing or invalid bearer token"}
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert cp.delete("/v1/edges/1").status_code == 401
    assert cp.kicks() == []  # refused before reaching the kicker
    for header in ("Bearer gamma", "alpha", "Basic YWxwaGE6", "Bearer ", "Bearer alphaX"):
        assert cp.get("/v1/edges", headers={"Authorization": header}).status_code == 401, header
    assert cp.get("/v1/edges", headers={"Authorization": "Bearer alpha"}).json()["count"] == 12
    assert cp.get("/v1/edges", headers={"Authorization": "bearer beta"}).status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert cp.get(path).status_code == 200, path


def test_auth_grpc(start):
    cp = start(tokens="alpha,beta")
    stub = pb_grpc.ControlPlaneStub(cp.channel)
    for metadata in (None, [("authorization", "Bearer nope")], [("authorization", "alpha")]):
        with pytest.raises(grpc.RpcError) as info:
            stub.ListEdges(pb.ListEdgesRequest(), timeout=10, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        stub.KickEdge(pb.KickEdgeRequest(edge_id=1), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert cp.kicks() == []
    with pytest.raises(grpc.RpcError) as info:
        reflected_services(cp.channel)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    good = [("authorization", "Bearer beta")]
    assert stub.ListEdges(pb.ListEdgesRequest(), timeout=10, metadata=good).count == 12
    assert SERVICE in reflected_services(cp.channel, metadata=good)
    # probes carry no token: the health service is exempt
    assert health_status(cp.channel) == health_pb2.HealthCheckResponse.SERVING


def test_auth_off_by_default(shared_cp):
    assert shared_cp.get("/v1/edges").status_code == 200
    stub = pb_grpc.ControlPlaneStub(shared_cp.channel)
    assert stub.ListEdges(pb.ListEdgesRequest(), timeout=10).count == 12


# -- OpenAPI ---------------------------------------------------------------------------------------

PATHS = {
    "/v1/edges": {"get"},
    "/v1/edges/{edge_id}": {"get", "delete"},
    "/v1/edges/rpcs": {"get"},
    "/v1/services": {"get"},
    "/v1/services/{service_id}": {"get", "delete"},
    "/v1/services/rpcs": {"get"},
    "/v1/services/topics": {"get"},
    "/v1/bans": {"get"},
    "/v1/bans/{edge_id}": {"put", "delete"},
    "/v1/apps": {"get"},
    "/v1/apps/{id}": {"get", "put", "delete"},
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
    "/openapi.json": {"get"},
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_openapi_served_parses_and_lists_every_path(shared_cp):
    resp = shared_cp.get("/openapi.json")
    doc = json.loads(resp.text)
    assert doc == openapi_document()
    assert doc["openapi"].startswith("3.")
    assert {p: set(ops) & METHODS for p, ops in doc["paths"].items()} == PATHS
    # every $ref resolves
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert refs and all(r.split("/")[-1] in doc["components"]["schemas"] for r in refs)
    for path, ops in doc["paths"].items():
        for method in ops.keys() & METHODS:
            op = ops[method]
            assert op["responses"] and op["operationId"], (path, method)


def test_openapi_matches_the_served_routes():
    from frontier.control.rest import create_app

    app = create_app(service=None)  # routes only; no request is made
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        served.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert served == PATHS


@pytest.mark.parametrize(
    "path, spec",
    [("/v1/edges", P.LIST_EDGES), ("/v1/edges/rpcs", P.LIST_EDGE_RPCS), ("/v1/services", P.LIST_SERVICES),
     ("/v1/services/rpcs", P.LIST_SERVICE_RPCS), ("/v1/services/topics", P.LIST_SERVICE_TOPICS)],
)
def test_openapi_parameters_are_what_the_server_accepts(shared_cp, path, spec):
    documented = openapi_document()["paths"][path]["get"]["parameters"]
    assert [p["name"] for p in documented] == [p.name for p in spec]
    for p in documented:
        value = "create_time" if p["name"] == "order" else "1" if p["schema"]["type"] == "integer" else "x"
        resp = shared_cp.get(path, params={p["name"]: value})
        assert resp.status_code == 200, (p["name"], resp.text)
    assert shared_cp.get(path, params={"undocumented": "1"}).status_code == 400


# -- shutdown ------------------------------------------------------------------------------------------


def test_stop_frees_the_port(start):
    cp = start()
    with requests.Session() as keepalive:
        assert keepalive.get(cp.url + "/healthz", timeout=5).status_code == 200  # an open keep-alive connection
        stub = pb_grpc.ControlPlaneStub(cp.channel)
        assert stub.GetEdge(pb.GetEdgeRequest(edge_id=1), timeout=5).edge_id == 1  # an open spliced HTTP/2 connection
        t = time.monotonic()
        assert cp.stop() == 0
        assert time.monotonic() - t < 8
    assert "STOPPED" in cp.proc.stdout.read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cp.port), timeout=2).close()
