"""The ``edge_http`` backend end to end: a real gateway process, a real edge (SDK)
exposing a real web app, clients speaking HTTP through the ingress."""

from __future__ import annotations

import hashlib
import socket

import pytest
import requests

from frontier.sdk import Edge

from .webapp import pattern_sha256

APP = {
    "id": "device-ui",
    "frontends": [{"kind": "hostname", "hostname": "*.edges.test", "path_prefix": "/"}],
    "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}},
}


@pytest.fixture
def setup(ingress_gateway, webapp, clients):
    others = [
        {**APP, "id": "dead", "frontends": [{"hostname": "*.dead.test"}],
         "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "dead"}}},
        {**APP, "id": "hidden", "frontends": [{"hostname": "hidden.test"}],
         "backend": {"kind": "edge_http", "edge_http_opts": {"edge_id": 4242, "target": "secret"}}},
    ]
    gw = ingress_gateway({"apps": [APP, *others], "backend_timeout": 3})
    edge = clients(Edge, gw.edge_addr, edge_id=4242, expose={"ui": webapp.addr, "dead": "127.0.0.1:1"})
    return gw, edge


def get(gw, path: str, host: str = "4242.edges.test", **kw):
    kw.setdefault("timeout", 10)
    headers = {"Host": host, **kw.pop("headers", {})}
    return requests.get(gw.url(path), headers=headers, **kw)


def test_page_through_edge(setup) -> None:
    gw, edge = setup
    r = get(gw, "/hello")
    assert r.status_code == 200
    assert r.text == "hello from edge-app"


def test_keep_alive_session_reuses_one_connection(setup) -> None:
    gw, _ = setup
    with requests.Session() as s:
        for i in range(20):
            r = s.get(gw.url("/hello"), headers={"Host": "4242.edges.test"}, timeout=10)
            assert r.status_code == 200, r.text
        assert r.headers.get("connection", "").lower() != "close"


def test_forwarded_headers_set_and_client_values_replaced(setup) -> None:
    gw, _ = setup
    r = get(gw, "/headers", headers={"X-Forwarded-For": "6.6.6.6", "X-Custom": "kept"})
    seen = r.json()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "4242.edges.test"
    assert seen["host"] == "4242.edges.test"
    assert seen["x-custom"] == "kept"


def test_chunked_response_and_streamed_upload(setup) -> None:
    gw, _ = setup
    r = get(gw, "/chunked")
    assert r.text == "".join(f"part {i}\n" for i in range(5))

    def body():
        for i in range(50):
            yield bytes([i % 256]) * 10000
    r = requests.post(gw.url("/count"), data=body(), headers={"Host": "4242.edges.test"}, timeout=10)
    expected = hashlib.sha256(b"".join(bytes([i % 256]) * 10000 for i in range(50))).hexdigest()
    assert r.json() == {"bytes": 500000, "sha256": expected}


def test_download_matches_sha256(setup) -> None:
    gw, _ = setup
    size = 8 * 1024 * 1024 + 123
    r = get(gw, f"/big/{size}", stream=True)
    digest = hashlib.sha256()
    for chunk in r.iter_content(65536):
        digest.update(chunk)
    assert digest.hexdigest() == pattern_sha256(size)


def test_websocket_upgrade_passthrough(setup) -> None:
    gw, _ = setup
    import base64
    import os

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as sock:
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 4242.edges.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        # one masked text frame "hi"
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
        sock.sendall(bytes([0x81, 0x80 | 2]) + mask + payload)
        rest = head.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            rest += sock.recv(4096)
        assert rest[0] == 0x81
        assert rest[2:2 + (rest[1] & 0x7F)] == b"echo: hi"


def test_errors(setup) -> None:
    gw, edge = setup
    r = get(gw, "/hello", host="nothing.example")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (404, "NO_APP")
    assert "text/html" in r.headers["content-type"]
    r = get(gw, "/hello", host="nothing.example", headers={"Accept": "application/json"})
    assert r.json()["error"] == "NO_APP"
    r = get(gw, "/hello", host="777.edges.test")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (502, "EDGE_NOT_ONLINE")
    r = get(gw, "/hello", host="4242.dead.test")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (502, "BACKEND_UNREACHABLE")
    r = get(gw, "/hello", host="hidden.test")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (403, "NOT_EXPOSED")
    r = get(gw, "/slow/5.0")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (504, "BACKEND_TIMEOUT")
    assert get(gw, "/hello").status_code == 200  # the edge still serves after all that


def test_client_gone_mid_download_releases_the_edge_side(setup) -> None:
    gw, edge = setup
    import time

    free = edge.exposed._slots._value
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as sock:
            sock.sendall(b"GET /big/104857600 HTTP/1.1\r\nHost: 4242.edges.test\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # the client vanished mid-body: the stream is reset, the edge lets go of its connection
    deadline = time.monotonic() + 10
    while edge.exposed._slots._value != free:
        assert time.monotonic() < deadline, "the edge still holds exposed connections of vanished clients"
        time.sleep(0.1)
    assert get(gw, "/hello").status_code == 200


def test_edge_out_of_exposed_slots_is_503(setup) -> None:
    import threading

    gw, edge = setup
    edge.exposed._slots = threading.BoundedSemaphore(1)  # as if 255 more were busy
    slow = threading.Thread(target=lambda: get(gw, "/slow/2.0"))
    slow.start()
    import time

    time.sleep(0.5)
    r = get(gw, "/hello")
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (503, "BACKEND_BUSY")
    slow.join()
