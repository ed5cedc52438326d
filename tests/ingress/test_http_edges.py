"""The ingress's own answers, auth, redirect and peer_set backends, and deadlines,
with real clients (requests, raw sockets) against a real gateway process."""

from __future__ import annotations

import re
import socket
import threading
import time

import bcrypt
import pytest
import requests

from .webapp import WebApp


def _peer_app(addrs: list[str], **extra) -> dict:
    return {"id": "plain", "frontends": [{"hostname": "plain.test"}],
            "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": addrs}}, **extra}


def test_peer_set_balances_and_skips_a_dead_upstream(ingress_gateway) -> None:
    a, b = WebApp("a"), WebApp("b")
    try:
        gw = ingress_gateway({"apps": [_peer_app([f"http://{a.addr}", "http://127.0.0.1:1", f"http://{b.addr}"])]})
        seen = []
        for _ in range(9):
            r = requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=10)
            assert r.status_code == 200, r.text
            seen.append(r.text)
        assert {"hello from a", "hello from b"} == set(seen)
    finally:
        a.close()
        b.close()


def test_peer_set_all_down_is_502(ingress_gateway) -> None:
    gw = ingress_gateway({"apps": [_peer_app(["http://127.0.0.1:1"])]})
    r = requests.get(gw.url("/"), headers={"Host": "plain.test"}, timeout=10)
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (502, "BACKEND_UNREACHABLE")


def test_redirect(ingress_gateway) -> None:
    app = {"id": "to-https", "frontends": [{"hostname": "old.test"}],
           "backend": {"kind": "redirect", "redirect_opts": {"to": "https://new.test"}}}
    gw = ingress_gateway({"apps": [app]})
    r = requests.get(gw.url("/a/b?c=1"), headers={"Host": "old.test"}, allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["Location"]) == (301, "https://new.test/a/b?c=1")
    r = requests.post(gw.url("/form"), data=b"x", headers={"Host": "old.test"}, allow_redirects=False, timeout=10)
    assert r.status_code == 308


def test_bearer_and_basic_auth_and_credentials_stripped(ingress_gateway, webapp) -> None:
    line = "alice:" + bcrypt.hashpw(b"wonderland", bcrypt.gensalt(rounds=4)).decode()
    apps = [
        _peer_app([f"http://{webapp.addr}"], id="bearer", frontends=[{"hostname": "bearer.test"}],
                  auth={"kind": "bearer", "tokens": ["secret-1", "secret-2"]}),
        _peer_app([f"http://{webapp.addr}"], id="basic", frontends=[{"hostname": "basic.test"}],
                  auth={"kind": "basic", "users": [line]}),
    ]
    gw = ingress_gateway({"apps": apps})
    r = requests.get(gw.url("/headers"), headers={"Host": "bearer.test"}, timeout=10)
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (401, "UNAUTHORIZED")
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")
    r = requests.get(gw.url("/headers"), headers={"Host": "bearer.test", "Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401
    r = requests.get(gw.url("/headers"), headers={"Host": "bearer.test", "Authorization": "Bearer secret-2"}, timeout=10)
    assert r.status_code == 200 and "authorization" not in r.json()

    r = requests.get(gw.url("/headers"), headers={"Host": "basic.test"}, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert requests.get(gw.url("/headers"), headers={"Host": "basic.test"}, auth=("alice", "nope"), timeout=10).status_code == 401
    r = requests.get(gw.url("/headers"), headers={"Host": "basic.test"}, auth=("alice", "wonderland"), timeout=10)
    assert r.status_code == 200 and "authorization" not in r.json()


def test_path_prefix_most_specific_wins_and_encoded_paths_do_not_slip(ingress_gateway, webapp) -> None:
    apps = [
        _peer_app([f"http://{webapp.addr}"], id="root", frontends=[{"hostname": "site.test", "path_prefix": "/"}]),
        _peer_app([f"http://{webapp.addr}"], id="admin", frontends=[{"hostname": "site.test", "path_prefix": "/headers"}],
                  auth={"kind": "bearer", "tokens": ["t"]}),
    ]
    gw = ingress_gateway({"apps": apps})
    assert requests.get(gw.url("/hello"), headers={"Host": "site.test"}, timeout=10).status_code == 200
    for path in ("/headers", "/%68eaders", "/x/../headers"):
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: site.test\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 401"), path


def test_headers_too_large_is_431(ingress_gateway) -> None:
    gw = ingress_gateway({"apps": [], "max_header_size": 2048})
    r = requests.get(gw.url("/"), headers={"Host": "x.test", "X-Big": "a" * 5000}, timeout=10)
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (431, "HEADERS_TOO_LARGE")


def test_body_too_large_is_413(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])], "max_body_size": 1000})
    r = requests.post(gw.url("/count"), data=b"x" * 5000, headers={"Host": "plain.test"}, timeout=10)
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (413, "BODY_TOO_LARGE")
    r = requests.post(gw.url("/count"), data=iter([b"x" * 600, b"x" * 600]), headers={"Host": "plain.test"}, timeout=10)
    assert r.status_code == 413
    assert requests.post(gw.url("/count"), data=b"x" * 900, headers={"Host": "plain.test"}, timeout=10).json()["bytes"] == 900


def _slowloris(port: int, stop: threading.Event, socks: list) -> None:
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: plain.test\r\n")
        socks.append(s)
    while not stop.is_set():
        for s in socks:
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                pass
        stop.wait(0.5)


def test_slowloris_gets_408_and_bystanders_are_served(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])], "header_timeout": 2, "idle_timeout": 2})
    stop, socks = threading.Event(), []
    t = threading.Thread(target=_slowloris, args=(gw.http_port, stop, socks), daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            r = requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=10)
            assert r.status_code == 200
            assert time.monotonic() - started < 1.0
        time.sleep(2.5)
        assert socks
        data = socks[0].recv(200)
        assert data.startswith(b"HTTP/1.1 408"), data
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()


def test_silent_connection_closed_after_idle_timeout(ingress_gateway) -> None:
    gw = ingress_gateway({"apps": [], "header_timeout": 1, "idle_timeout": 1})
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
        started = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - started < 5


def test_flood_does_not_starve_a_bystander(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])]})
    stop = threading.Event()

    def flood() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                s.get(gw.url("/nothing"), headers={"Host": "unknown.test"}, timeout=10)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        worst = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=10).status_code == 200
            worst = max(worst, time.monotonic() - started)
        assert worst < 1.0, worst
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_connection_cap(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])], "max_connections": 5, "header_timeout": 5})
    time.sleep(0.5)  # the start-up probe's connection must be gone, or it holds a slot
    held = [socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) for _ in range(5)]
    try:
        time.sleep(0.3)
        with pytest.raises(requests.ConnectionError):
            requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=5)
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=5).status_code == 200


def test_pipelined_requests_answered_in_order(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])]})
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: plain.test\r\n\r\n"
                  b"GET /nothing HTTP/1.1\r\nHost: other.test\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"200", b"404", b"200"], data


def test_garbage_from_the_backend_is_502(ingress_gateway) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def garbage() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP\r\n\r\n")
            conn.close()

    threading.Thread(target=garbage, daemon=True).start()
    try:
        gw = ingress_gateway({"apps": [_peer_app([f"http://127.0.0.1:{port}"])]})
        r = requests.get(gw.url("/"), headers={"Host": "plain.test", "Accept": "application/json"}, timeout=10)
        assert (r.status_code, r.headers["X-Frontier-Error"]) == (502, "BAD_BACKEND_RESPONSE")
        assert r.json()["error"] == "BAD_BACKEND_RESPONSE"
    finally:
        listener.close()


def test_drain_finishes_requests_in_progress(ingress_gateway, webapp) -> None:
    import signal

    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])]}, {"limits": {"drain_timeout": 10}})
    idle = socket.create_connection(("127.0.0.1", gw.http_port), timeout=10)  # a keep-alive client between requests
    result: list = []
    slow = threading.Thread(target=lambda: result.append(
        requests.get(gw.url("/slow/2.0"), headers={"Host": "plain.test"}, timeout=20)))
    slow.start()
    time.sleep(0.5)
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert idle.recv(100) == b""  # closed at once: it was waiting for a request
    with pytest.raises(requests.ConnectionError):  # no new connections
        requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=5)
    slow.join()
    r = result[0]
    assert (r.status_code, r.text, r.headers.get("Connection")) == (200, "late", "close")
    assert gw.proc.wait(20) == 0
    idle.close()


def test_per_ip_connection_cap_leaves_room_for_others(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": [_peer_app([f"http://{webapp.addr}"])], "max_connections_per_ip": 3})
    time.sleep(0.5)
    held = [socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) for _ in range(3)]
    try:
        time.sleep(0.3)
        with pytest.raises(requests.ConnectionError):
            requests.get(gw.url("/hello"), headers={"Host": "plain.test"}, timeout=5)
        # another source address (127.0.0.2 is loopback too) is not affected
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10, source_address=("127.0.0.2", 0)) as s:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
