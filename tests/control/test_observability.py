"""Go's always-on observability listener (``observability.addr``, 9091 by default):
``/healthz``, ``/readyz`` and ``/metrics`` served by a real gateway, with the control
plane off or on (the control plane keeps its own copies)."""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from frontier.config import Config
from frontier.sdk import Edge, Service
from tests.e2e.proc_tools import wait_until
from tests.gateway import GatewayProcess

pytestmark = pytest.mark.timeout(120)


def _sample(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    raise AssertionError(f"{name} not in the scrape")


def test_defaults_are_gos() -> None:
    config = Config()
    assert config.observability.enable is True
    assert config.observability.addr == "0.0.0.0:9091"


def test_served_without_the_control_plane(tmp_path) -> None:
    with GatewayProcess(tmp_path) as gw:
        base = f"http://{gw.observability_addr}"
        wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 10, what="ready")
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        missing = requests.get(f"{base}/v1/edges", timeout=5)  # the control plane's paths are not here
        assert missing.status_code == 404 and missing.json()["code"] == 404
        posted = requests.post(f"{base}/readyz", timeout=5)
        assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
        head = requests.head(f"{base}/healthz", timeout=5)
        assert head.status_code == 200 and head.content == b""

        svc = Service(gw.service_addr, name="obs", timeout=5.0, reconnect=False)
        edges = [Edge(gw.edge_addr, timeout=5.0, reconnect=False) for _ in range(2)]
        try:
            resp = requests.get(f"{base}/metrics", timeout=5)
            assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
            assert _sample(resp.text, "frontier_edges_connected") == 2
            assert _sample(resp.text, "frontier_services_connected") == 1
        finally:
            for client in (svc, *edges):
                client.close()
        wait_until(lambda: _sample(requests.get(f"{base}/metrics", timeout=5).text, "frontier_edges_connected") == 0,
                   10, what="edges gone from the scrape")
        assert "control plane" not in gw.log()  # it was off: these answers came from the observability port


def test_served_next_to_the_control_plane_copies(tmp_path) -> None:
    with GatewayProcess(tmp_path, control=True) as gw:
        for base in (f"http://{gw.observability_addr}", f"http://{gw.control_addr}"):
            wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 10, what="ready")
            assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
            assert "frontier_edges_connected" in requests.get(f"{base}/metrics", timeout=5).text


def test_readyz_turns_503_while_draining(tmp_path) -> None:
    gw = GatewayProcess(tmp_path, {"limits": {"drain_timeout": 5.0}}).start()
    base = f"http://{gw.observability_addr}"
    svc = Service(gw.service_addr, name="slow", timeout=10.0, reconnect=False)
    svc.register("slow", lambda req: (time.sleep(2.0), b"done")[1])
    edge = Edge(gw.edge_addr, timeout=10.0, reconnect=False)
    try:
        result: list[bytes] = []
        caller = threading.Thread(target=lambda: result.append(edge.call("slow", b"", timeout=10.0)))
        caller.start()
        time.sleep(0.3)  # the call is in flight: the drain waits for it
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 503, 5, what="not ready")
        body = requests.get(f"{base}/readyz", timeout=5).json()
        assert body["reason"] == "NOT_READY"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200  # alive while draining
        caller.join(10)
        assert result == [b"done"]
    finally:
        svc.close()
        edge.close()
        assert gw.stop() == 0


def test_enable_false_turns_it_off(tmp_path) -> None:
    with GatewayProcess(tmp_path, {"observability": {"enable": False}}) as gw:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", gw.observability_port), timeout=1).close()


def test_a_taken_port_is_logged_and_the_gateway_serves_on(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with GatewayProcess(tmp_path, {"observability": {"addr": f"127.0.0.1:{port}"}}) as gw:
            edge = Edge(gw.edge_addr, timeout=5.0, reconnect=False)
            try:
                assert edge.edge_id > 0
            finally:
                edge.close()
            wait_until(lambda: "observability listener: cannot listen" in gw.log(), 5, what="the error logged")


def test_idle_connections_cannot_hold_the_probe_port(tmp_path) -> None:
    """A client that connects and says nothing is cut off after the request-head
    deadline (``limits.http_header_timeout``), and probes keep answering meanwhile."""
    with GatewayProcess(tmp_path, {"limits": {"http_header_timeout": 2.0}}) as gw:
        idle = [socket.create_connection(("127.0.0.1", gw.observability_port), timeout=15) for _ in range(20)]
        try:
            assert requests.get(f"http://{gw.observability_addr}/healthz", timeout=5).status_code == 200
            started = time.monotonic()
            assert idle[0].recv(1) == b""  # closed by the gateway
            assert time.monotonic() - started < 5
        finally:
            for sock in idle:
                sock.close()
