"""TLS and mTLS on the service, edge and control-plane listeners, with real
certificates: handshakes that must succeed, ones that must fail (typed), SNI among
several certificates, and certificates rotated on disk while the gateway runs."""

from __future__ import annotations

import shutil
import ssl
import threading
import time

import grpc
import pytest
import requests
from cryptography import x509

from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from frontier.sdk import ConnectionClosed, Edge, FrontierError, Service
from frontier.sdk.transport import tls_context
from tests.e2e.proc_tools import wait_until
from tests.security.certs import Issued, replace_files
from tests.security.conftest import metric, tls_block
from tests.streams import open_accepted

TOKEN = "control-plane-token"


def _peer_serial(client) -> int:
    der = client._link.sock.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def _both(pki, **kw):
    return {"servicebound": {"listen": {"tls": tls_block(pki, **kw)}}, "edgebound": {"listen": {"tls": tls_block(pki, **kw)}}}


def test_tls_on_both_listeners(gateway_factory, clients, pki):
    gw = gateway_factory(_both(pki))
    ca = str(pki.ca.cert_path)
    svc = clients(Service, gw.service_addr, name="echo-svc", tls_ca=ca)
    svc.register("echo", lambda req: req.data)
    edge = clients(Edge, gw.edge_addr, tls_ca=ca)
    edge.register("ping", lambda req: b"pong:" + req.data)
    assert edge.call("echo", b"over tls") == b"over tls"
    assert svc.call(edge.edge_id, "ping", b"x") == b"pong:x"
    assert edge._link.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert _peer_serial(edge) == pki.server.serial

    # a stream, and many threads sharing one TLS connection both ways
    stream, accepted = open_accepted(lambda: edge.open_stream("echo-svc"), svc.accept_stream)
    stream.sendall(b"s" * 100_000)
    assert accepted.recv_exactly(100_000) == b"s" * 100_000
    stream.close()
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for i in range(100):
                payload = bytes([n]) * (i * 97 % 20000)
                assert edge.call("echo", payload) == payload
                assert svc.call(edge.edge_id, "ping", payload) == b"pong:" + payload
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


def test_tls_mismatches_fail_typed(gateway_factory, clients, pki):
    tls_gw = gateway_factory(_both(pki), control=True)
    plain_gw = gateway_factory()
    # a plaintext client on a TLS port, a TLS client on a plaintext port
    with pytest.raises(ConnectionClosed):
        Edge(tls_gw.edge_addr, timeout=3.0, reconnect=False)
    with pytest.raises(ConnectionClosed):
        Edge(plain_gw.edge_addr, tls_ca=str(pki.ca.cert_path), timeout=3.0, reconnect=False)
    # a server certificate from a CA the client does not trust
    with pytest.raises(ConnectionClosed) as info:
        Edge(tls_gw.edge_addr, tls_ca=str(pki.other_ca.cert_path), timeout=3.0, reconnect=False)
    assert "certificate" in str(info.value).lower()
    # the name on the certificate must match what was dialled
    with pytest.raises(ConnectionClosed):
        Edge(tls_gw.edge_addr, tls_ca=str(pki.ca.cert_path), tls_server_name="elsewhere.test", timeout=3.0, reconnect=False)
    # the gateway served everyone else meanwhile, and counted the failed handshakes
    edge = clients(Edge, tls_gw.edge_addr, tls_ca=str(pki.ca.cert_path))
    assert edge.connected
    assert metric(tls_gw, "frontier_connections_refused_total", role="edge", reason="tls_handshake") >= 3


def test_mtls_accepts_the_right_client_certificate_only(gateway_factory, clients, pki):
    gw = gateway_factory(_both(pki, mtls=True))
    ca = str(pki.ca.cert_path)
    good = {"tls_ca": ca, "tls_cert": str(pki.client.cert_path), "tls_key": str(pki.client.key_path)}
    svc = clients(Service, gw.service_addr, **good)
    svc.register("echo", lambda req: req.data)
    edge = clients(Edge, gw.edge_addr, **good)
    assert edge.call("echo", b"mutual") == b"mutual"
    # an ssl_context built by the application works the same
    ctx = tls_context(ca=ca, cert=str(pki.client.cert_path), key=str(pki.client.key_path))
    assert clients(Edge, gw.edge_addr, ssl_context=ctx).call("echo", b"ctx") == b"ctx"

    for role, addr in ((Edge, gw.edge_addr), (Service, gw.service_addr)):
        with pytest.raises(ConnectionClosed):  # no client certificate
            role(addr, tls_ca=ca, timeout=3.0, reconnect=False)
        with pytest.raises(ConnectionClosed):  # a certificate from another CA
            role(addr, tls_ca=ca, tls_cert=str(pki.stranger.cert_path), tls_key=str(pki.stranger.key_path),
                 timeout=3.0, reconnect=False)
    assert edge.call("echo", b"still") == b"still"


def test_sni_picks_among_several_certificates(gateway_factory, clients, pki):
    gw = gateway_factory({"edgebound": {"listen": {"tls": tls_block(pki, certs=[pki.alpha, pki.beta])}}})
    ca = str(pki.ca.cert_path)
    beta = clients(Edge, gw.edge_addr, tls_ca=ca, tls_server_name="beta.test")
    alpha = clients(Edge, gw.edge_addr, tls_ca=ca, tls_server_name="alpha.test")
    default = clients(Edge, gw.edge_addr, tls_ca=ca)  # an IP address sends no SNI: the first pair
    assert _peer_serial(beta) == pki.beta.serial
    assert _peer_serial(alpha) == pki.alpha.serial
    assert _peer_serial(default) == pki.alpha.serial


def _copy(issued: Issued, directory) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "live.pem", directory / "live.key"
    shutil.copy(issued.cert_path, cert)
    shutil.copy(issued.key_path, key)
    return Issued(issued.cert, issued.key, cert, key)


def test_a_rotated_certificate_reaches_new_connections_without_a_restart(gateway_factory, clients, pki, tmp_path):
    live = _copy(pki.server, tmp_path / "live")
    gw = gateway_factory({"edgebound": {"listen": {"tls": tls_block(pki, certs=[live])}}})
    ca = str(pki.ca.cert_path)
    svc = clients(Service, gw.service_addr)
    svc.register("echo", lambda req: req.data)
    before = clients(Edge, gw.edge_addr, tls_ca=ca)
    assert _peer_serial(before) == pki.server.serial

    # half a rotation (the certificate, not yet its key) must not break anything
    live.cert_path.write_bytes(pki.server_next.cert_path.read_bytes())
    time.sleep(1.3)
    assert _peer_serial(clients(Edge, gw.edge_addr, tls_ca=ca)) == pki.server.serial
    # the key follows: new connections get the new certificate
    replace_files(live, pki.server_next)
    after = wait_until(lambda: _fresh_serial(gw, ca) == pki.server_next.serial, 5, what="the rotated certificate")
    assert after
    assert _peer_serial(clients(Edge, gw.edge_addr, tls_ca=ca)) == pki.server_next.serial
    # the connection made before the rotation is untouched
    assert before.call("echo", b"old connection") == b"old connection"
    assert gw.proc.poll() is None
    assert "TLS certificates reloaded" in gw.log()


def _fresh_serial(gw, ca: str) -> int:
    with Edge(gw.edge_addr, tls_ca=ca, timeout=3.0, reconnect=False) as edge:
        return _peer_serial(edge)


# -- the control plane ------------------------------------------------------------------------------------


def test_control_plane_over_tls_serves_rest_and_grpc(gateway_factory, clients, pki):
    gw = gateway_factory({"controlplane": {"listen": {"tls": tls_block(pki)}, "auth": {"bearer_tokens": [TOKEN]}}},
                         control=True)
    ca = str(pki.ca.cert_path)
    edge = clients(Edge, gw.edge_addr, meta=b"tls-cp")
    base = f"https://localhost:{gw.control_port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(f"{base}/healthz", verify=ca, timeout=5).status_code == 200
    assert requests.get(f"{base}/v1/edges", verify=ca, timeout=5).status_code == 401
    body = wait_until(lambda: requests.get(f"{base}/v1/edges", headers=auth, verify=ca, timeout=5).json()["edges"], 5,
                      what="the edge listed over HTTPS")
    assert [e["edge_id"] for e in body] == [edge.edge_id]
    with pytest.raises(requests.exceptions.ConnectionError):  # plaintext HTTP on the TLS port
        requests.get(f"http://127.0.0.1:{gw.control_port}/healthz", timeout=5)

    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_path.read_bytes())
    with grpc.secure_channel(f"localhost:{gw.control_port}", creds) as channel:
        stub = pb_grpc.ControlPlaneStub(channel)
        listed = stub.ListEdges(pb.ListEdgesRequest(), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10)
        assert [e.edge_id for e in listed.edges] == [edge.edge_id]


def test_control_plane_mtls(gateway_factory, pki):
    gw = gateway_factory({"controlplane": {"listen": {"tls": tls_block(pki, mtls=True)}}}, control=True)
    ca = str(pki.ca.cert_path)
    base = f"https://localhost:{gw.control_port}"
    cert = (str(pki.client.cert_path), str(pki.client.key_path))
    assert requests.get(f"{base}/healthz", verify=ca, cert=cert, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{base}/healthz", verify=ca, timeout=5)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{base}/healthz", verify=ca, cert=(str(pki.stranger.cert_path), str(pki.stranger.key_path)), timeout=5)
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_path.read_bytes(),
                                         private_key=pki.client.key_path.read_bytes(),
                                         certificate_chain=pki.client.cert_path.read_bytes())
    with grpc.secure_channel(f"localhost:{gw.control_port}", creds) as channel:
        listed = pb_grpc.ControlPlaneStub(channel).ListEdges(pb.ListEdgesRequest(), timeout=10)
        assert list(listed.edges) == []
