"""An SDK client pointed at something that is not a frontier port (an HTTP server, the
control plane, a TLS listener while it speaks plain TCP) gets a typed error saying
what it met, never ``FrameTooLarge: frame of 1213486160 bytes``; and the decoder
recognises such bytes on both sides."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from frontier.sdk import ConnectionClosed, Edge, NotFrontier, Service, Timeout
from frontier.wire import Connection, Side
from frontier.wire.connection import not_frontier
from tests.gateway import ROOT, free_port, wait_port
from tests.security.conftest import tls_block


@pytest.fixture(scope="module")
def http_server():
    """Python's own HTTP server: it answers a request line (our Hello holds a newline
    when the meta does) with an HTML error page and no status line."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def test_an_http_server_is_named(http_server):
    with pytest.raises(NotFrontier, match=rf"^{http_server} is not a frontier gateway: it speaks HTML \(an HTTP server "
                                          r"answered\), first bytes b'<!DOCTYPE HTML>\\n'; check the address"):
        Edge(http_server, meta=b"line one\nline two", timeout=5, reconnect=False)


def test_the_control_plane_port_is_named(gateway_factory):
    gw = gateway_factory(control=True)
    with pytest.raises(NotFrontier, match=r"it speaks HTTP \(an HTTP server answered\), first bytes b'HTTP/1.1 400 Bad'; "
                                          r"check the address: services connect to port 30011, edges to 30012"):
        Service(gw.control_addr, name="a\nb", timeout=5, reconnect=False)


def test_a_peer_that_never_answers_times_out_with_a_hint():
    with socket.socket() as silent:  # the kernel completes connects to a listening socket; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        addr = "127.0.0.1:%d" % silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            Edge(addr, timeout=1, reconnect=False)
    assert time.monotonic() - started < 3
    assert str(info.value) == (f"{addr}: no handshake answer within 1s (if it is not a frontier edge port or its "
                               "listener has TLS on (pass tls=True or tls_ca=...), that is why)")


def test_plain_tcp_to_a_tls_listener_says_tls_may_be_why(gateway_factory, pki):
    gw = gateway_factory({"edgebound": {"listen": {"tls": tls_block(pki)}}})
    with pytest.raises((NotFrontier, ConnectionClosed), match="TLS"):
        Edge(gw.edge_addr, timeout=5, reconnect=False)
    with Edge(gw.edge_addr, tls_ca=str(pki.ca.cert_path), timeout=5, reconnect=False) as edge:  # and with TLS it works
        assert edge.edge_id


def test_tls_to_a_plain_listener_says_the_peer_does_not_speak_tls(gateway_factory, pki):
    gw = gateway_factory()
    with pytest.raises(ConnectionClosed, match=r"the peer does not speak TLS \(a frontier listener without TLS\? "
                                               r"then connect without tls=/tls_ca=\)"):
        Edge(gw.edge_addr, tls_ca=str(pki.ca.cert_path), timeout=5, reconnect=False)


@pytest.mark.parametrize(("head", "what"), [
    (b"HTTP/1.1 400 Bad Request\r\n", "HTTP"), (b"\x15\x03\x03\x00\x02\x02\x46", "TLS"), (b"SSH-2.0-OpenSSH_9.2", "SSH"),
    (b"-ERR unknown command", "a text protocol"), (b"<html><body>", "HTML"),
])
def test_the_client_machine_names_what_answered(head, what):
    conn = Connection(Side.CLIENT)
    conn.receive_data(head)
    with pytest.raises(NotFrontier, match=f"not a frontier gateway: it speaks {what}"):
        conn.next_event()


def test_an_http_request_to_a_frontier_port_is_named_at_the_gateway():
    conn = Connection(Side.GATEWAY, max_frame_size=65536)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(NotFrontier, match=r"not a frontier client: it speaks HTTP \(an HTTP request\)"):
        conn.next_event()
    assert not_frontier(b"\x00\x00\x10\x00", Side.CLIENT) is None  # a frontier header is never mistaken
