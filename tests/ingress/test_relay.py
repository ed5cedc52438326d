"""Two frontier nodes, one Frontlas, one app defined once through one node's control
plane: both nodes serve it, the edge connected to one of them only (the other
relays through Frontlas)."""

from __future__ import annotations

import time
import uuid

import redis
import requests

from frontier.sdk import Edge
from tests.cluster.helpers import FrontlasProcess, drop_prefix, frontier_config

from .conftest import IngressGateway

SECRET = "relay-secret-0123456789"


def test_app_defined_once_served_by_both_nodes_edge_on_one(tmp_path, webapp, clients) -> None:
    prefix = f"test-relay-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis()
    frontlas = FrontlasProcess(tmp_path / "frontlas", prefix=prefix).start()
    nodes: list[IngressGateway] = []
    try:
        ingress = {"apps": [], "redis": {"addr": "127.0.0.1:6379", "key_prefix": prefix},
                   "relay_frontlas_api": frontlas.rest_addr}
        for name in ("a", "b"):
            extra = frontier_config(f"node-{name}", [frontlas.plane_addr],
                                    {"servicebound": {"auth": {"enable": True, "secrets": [SECRET]}}})
            gw = IngressGateway(tmp_path / name, ingress, extra, control=(name == "a"))
            nodes.append(gw.start())
        a, b = nodes
        app = {"id": "devices", "frontends": [{"hostname": "*.edges.test"}],
               "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}}}
        assert requests.put(f"http://{a.control_addr}/v1/apps/devices", json=app, timeout=10).status_code == 200
        clients(Edge, a.edge_addr, edge_id=7001, expose={"ui": webapp.addr})
        host = {"Host": "7001.edges.test"}
        assert requests.get(a.url("/hello"), headers=host, timeout=10).text == "hello from edge-app"
        deadline = time.monotonic() + 20
        while True:  # until B has the app (log) and Frontlas knows where the edge is
            r = requests.get(b.url("/hello"), headers=host, timeout=10)
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, f"{r.status_code} {r.text}\n{b.log()[-2000:]}"
            time.sleep(0.3)
        assert r.text == "hello from edge-app"
        with requests.Session() as s:  # keep-alive through the relay
            for _ in range(5):
                assert s.get(b.url("/headers"), headers=host, timeout=10).json()["x-forwarded-host"] == "7001.edges.test"
        r = requests.get(b.url("/hello"), headers={"Host": "999.edges.test"}, timeout=10)
        assert (r.status_code, r.headers["X-Frontier-Error"]) == (502, "EDGE_NOT_ONLINE")
    finally:
        for gw in nodes:
            gw.stop()
        frontlas.stop()
        drop_prefix(client, prefix)
