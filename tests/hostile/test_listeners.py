"""Slow and silent connections on every port, and a process out of descriptors.

Before, the control-plane port kept a connection that sent one byte, a request line
and then a header byte per second, or only the HTTP/2 preface, open for ever; enough
of them exhausted the descriptors: new edges timed out, /healthz hung, and the accept
loop logged a storm of EMFILE tracebacks.
"""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import psutil
import pytest
import requests

from frontier.sdk import Edge
from frontier.wire.codec import encode_frame
from frontier.wire.events import PROTOCOL_VERSION, Hello
from tests.cluster.helpers import FrontlasProcess

from .conftest import assert_no_traceback

HTTP_LIMITS = {"http_header_timeout": 1.0, "http_idle_timeout": 2.0, "max_http_connections": 20}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(addr: str) -> socket.socket:
    host, _, port = addr.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (fail after ``seconds``), sending one
    byte of ``trickle`` every 0.3 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.3)
    sent = 0
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except socket.timeout:
            if sent < len(trickle):
                try:
                    sock.send(trickle[sent:sent + 1])
                except OSError:
                    return time.monotonic() - start
                sent += 1
        except OSError:  # reset
            return time.monotonic() - start
    raise AssertionError(f"the server kept the connection open for {seconds}s")


SLOW_CLIENTS = {
    "one byte": (b"G", b""),
    "a request line, then a header byte every 0.3 s": (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\nX-Slow: " + b"a" * 40),
    "the HTTP/2 preface only": (PREFACE, b""),
    "the first byte of the preface": (b"P", b""),
}


@pytest.mark.parametrize("kind", sorted(SLOW_CLIENTS))
def test_a_slow_client_on_the_control_plane_is_closed_by_its_deadline(gateway_factory, kind: str) -> None:
    gw = gateway_factory({"limits": HTTP_LIMITS}, control=True)
    first, trickle = SLOW_CLIENTS[kind]
    sock = connect(gw.control_addr)
    sock.sendall(first)
    took = closed_within(sock, 8.0, trickle)
    print(f"\n{kind}: closed after {took:.2f}s")
    assert took < HTTP_LIMITS["http_idle_timeout"] + 2.0
    assert requests.get(f"http://{gw.control_addr}/healthz", timeout=5).status_code == 200
    assert_no_traceback(gw)


@pytest.mark.parametrize("port", ["edge", "service"])
def test_a_hello_sent_a_byte_at_a_time_is_closed_by_the_handshake_deadline(gateway_factory, port: str) -> None:
    gw = gateway_factory({"limits": {"handshake_timeout": 1.0}})
    sock = connect(gw.edge_addr if port == "edge" else gw.service_addr)
    hello = encode_frame(Hello(PROTOCOL_VERSION, port, meta=b"m" * 200))
    took = closed_within(sock, 8.0, hello)
    assert took < 2.5, took
    assert_no_traceback(gw)


def test_an_idle_keep_alive_connection_is_closed(gateway_factory) -> None:
    gw = gateway_factory({"limits": HTTP_LIMITS}, control=True)
    sock = connect(gw.control_addr)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in sock.recv(65536).split(b"\r\n", 1)[0]
    took = closed_within(sock, 8.0)
    assert HTTP_LIMITS["http_idle_timeout"] - 0.5 < took < HTTP_LIMITS["http_idle_timeout"] + 2.0


def test_the_http_connection_cap_refuses_at_accept_and_edges_still_connect(gateway_factory) -> None:
    cap = HTTP_LIMITS["max_http_connections"]
    gw = gateway_factory({"limits": {**HTTP_LIMITS, "http_header_timeout": 3.0, "http_idle_timeout": 5.0}}, control=True)
    socks = [connect(gw.control_addr) for _ in range(cap + 10)]
    for sock in socks:
        try:
            sock.sendall(b"G")
        except OSError:
            pass
    time.sleep(0.5)  # well inside the 3 s header deadline: only refusals have ended yet
    refused = [bool(select.select([sock], [], [], 0)[0]) for sock in socks]  # readable: EOF or reset
    held = refused.count(False)
    print(f"\n{cap + 10} connections: {held} held, {refused.count(True)} refused at accept")
    assert held <= cap and refused.count(True) >= 10
    edge = Edge(gw.edge_addr, timeout=5)  # other listeners are untouched
    edge.close()
    for sock, was_refused in zip(socks, refused):  # the held ones end by their header deadline
        if not was_refused:
            closed_within(sock, 6.0)
    assert requests.get(f"http://{gw.control_addr}/healthz", timeout=5).status_code == 200
    assert_no_traceback(gw)


def test_running_out_of_descriptors_pauses_accepting_with_one_log_line(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"handshake_timeout": 2.0}}, control=True)
    assert gw.proc is not None
    proc = psutil.Process(gw.proc.pid)
    soft, hard = proc.rlimit(psutil.RLIMIT_NOFILE)
    proc.rlimit(psutil.RLIMIT_NOFILE, (proc.num_fds() + 40, hard))
    silent = [connect(gw.edge_addr) for _ in range(150)]  # no Hello: each holds a descriptor
    time.sleep(1.0)
    log = gw.log()
    assert "cannot accept (EMFILE)" in log, log[-2000:]
    assert log.count("cannot accept") <= 2, log[-3000:]
    for sock in silent:
        sock.close()
    time.sleep(0.5)
    edge = Edge(gw.edge_addr, timeout=10)  # the accept loop is alive
    edge.close()
    proc.rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
    assert requests.get(f"http://{gw.control_addr}/healthz", timeout=5).status_code == 200
    assert_no_traceback(gw)


def test_frontlas_ports_have_the_same_deadlines(tmp_path: Path) -> None:
    frontlas = FrontlasProcess(tmp_path, prefix=f"hostile-{time.time_ns()}", extra={"limits": HTTP_LIMITS}).start()
    try:
        for first in (b"G", PREFACE):
            sock = socket.create_connection(("127.0.0.1", frontlas.control_port), timeout=10)
            sock.sendall(first)
            assert closed_within(sock, 8.0) < HTTP_LIMITS["http_idle_timeout"] + 2.0
        # the frontier plane: a connection that never says hello ends by the handshake deadline
        sock = socket.create_connection(("127.0.0.1", frontlas.plane_port), timeout=10)
        assert closed_within(sock, 15.0) < 12.0
        assert "Traceback" not in frontlas.log()
    finally:
        frontlas.stop()
