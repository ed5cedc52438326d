"""Cluster-wide apps: two gateway processes share a Redis Stream log; an app defined
once through one node's control plane is served by both, a node that starts later
replays the log, and a deletion reaches every node."""

from __future__ import annotations

import time
import uuid

import redis
import requests

from tests.cluster.helpers import drop_prefix


def _wait(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the nodes did not converge in time"
        time.sleep(0.1)


def _status(gw, host: str) -> int:
    return requests.get(gw.url("/hello"), headers={"Host": host}, timeout=10).status_code


def test_app_put_on_one_node_is_served_by_all(ingress_gateway, webapp) -> None:
    prefix = f"test-ingress-{uuid.uuid4().hex[:8]}:"
    section = {"apps": [], "redis": {"addr": "127.0.0.1:6379", "key_prefix": prefix}}
    client = redis.Redis(decode_responses=True)
    try:
        a = ingress_gateway(section, control=True)
        b = ingress_gateway(section)
        app = {"id": "shared", "frontends": [{"hostname": "shared.test"}],
               "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}}
        r = requests.put(f"http://{a.control_addr}/v1/apps/shared", json=app, timeout=10)
        assert r.status_code == 200, r.text
        assert _status(a, "shared.test") == 200  # read-your-writes on the node that took it
        _wait(lambda: _status(b, "shared.test") == 200)
        assert client.xlen(f"{prefix}ingress:apps") == 1
        c = ingress_gateway(section)  # a node started later replays the log
        assert _status(c, "shared.test") == 200
        assert requests.delete(f"http://{a.control_addr}/v1/apps/shared", timeout=10).status_code == 200
        for gw in (a, b, c):
            _wait(lambda gw=gw: _status(gw, "shared.test") == 404)
    finally:
        drop_prefix(client, prefix)


def test_nodes_follow_again_after_redis_comes_back(ingress_gateway, webapp, tmp_path) -> None:
    from tests.cluster.helpers import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        section = {"apps": [], "redis": {"addr": server.addr, "key_prefix": "t:"}}
        a = ingress_gateway(section, control=True)
        b = ingress_gateway(section)
        app = {"id": "x", "frontends": [{"hostname": "x.test"}],
               "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}}
        server.kill()
        r = requests.put(f"http://{a.control_addr}/v1/apps/x", json=app, timeout=10)
        assert r.status_code == 503, r.text  # not taken: the log is down (and nothing changed locally)
        assert _status(a, "x.test") == 404
        # same port, empty data (as after a Redis restart without persistence)
        server.proc = None
        server.start()
        time.sleep(1.5)  # the followers reconnect
        assert requests.put(f"http://{a.control_addr}/v1/apps/x", json=app, timeout=10).status_code == 200
        _wait(lambda: _status(b, "x.test") == 200)
    finally:
        server.stop()
