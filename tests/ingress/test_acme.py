"""ACME against a real ACME server (Debian's pebble): the ingress answers HTTP-01
itself, gets a certificate for an app's hostname, serves it by SNI, keeps account key
and certificates in Redis, and renews without a restart. ``renew_before`` is set far
beyond pebble's certificate lifetime so a renewal comes at the next check."""

from __future__ import annotations

import ssl
import time
import uuid

import redis

from tests.cluster.helpers import drop_prefix
from tests.gateway import free_port

from .conftest import IngressGateway
from .pebble import Pebble
from .tls_client import https_get


def _serial(port: int, cafile: str, name: str) -> int | None:
    """The serial of the verified certificate served for ``name``, or None (not yet)."""
    try:
        serial, body = https_get(port, cafile, name, "/hello")
    except (OSError, ssl.SSLError):
        return None
    assert body.endswith(b"hello from edge-app"), body
    return serial


def test_acme_issues_serves_and_renews(tmp_path, webapp) -> None:
    prefix = f"test-acme-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis()
    https_port = free_port()
    app = {"id": "site", "frontends": [{"hostname": "acme-site.test"}],
           "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}}
    gw = IngressGateway(tmp_path / "gw", {"apps": [app]})  # picks the HTTP port pebble must check
    pebble = Pebble(tmp_path / "pebble", gw.http_port)
    try:
        gw.config["ingress"].update({
            "https": {"listen": {"addr": f"127.0.0.1:{https_port}"}},
            "redis": {"addr": "127.0.0.1:6379", "key_prefix": prefix},
            "acme": {"directory": pebble.directory, "email": "ops@example.com", "ca_bundle": pebble.tls_ca,
                     "check_interval": 1, "renew_before": 100000},
        })
        import yaml

        gw.config_path.write_text(yaml.safe_dump(gw.config))
        gw.start()
        root = tmp_path / "pebble-root.pem"
        root.write_text(pebble.root_pem())
        deadline = time.monotonic() + 60
        first = None
        while first is None:
            assert time.monotonic() < deadline, f"no certificate:\n{gw.log()[-3000:]}\n{pebble.log()[-2000:]}"
            time.sleep(0.5)
            first = _serial(https_port, str(root), "acme-site.test")
        assert client.hexists(f"{prefix}ingress:acme:cert:acme-site.test", "chain")
        assert client.exists(f"{prefix}ingress:acme:account_key")
        # renewal: a new certificate reaches new connections, the process keeps running
        deadline = time.monotonic() + 60
        while (serial := _serial(https_port, str(root), "acme-site.test")) in (first, None):
            assert time.monotonic() < deadline, f"not renewed:\n{gw.log()[-3000:]}"
            time.sleep(0.5)
        assert gw.proc.poll() is None
    finally:
        gw.stop()
        pebble.stop()
        drop_prefix(client, prefix)


def test_two_nodes_serve_the_same_acme_certificate(tmp_path, webapp) -> None:
    """Certificates live in Redis: whichever node issues, both serve the same one (the CA
    checks HTTP-01 on node A's port; node A answers tokens node B started, from Redis)."""
    prefix = f"test-acme2-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis()
    app = {"id": "site", "frontends": [{"hostname": "shared-acme.test"}],
           "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}}
    a = IngressGateway(tmp_path / "a", {"apps": [app]})
    b = IngressGateway(tmp_path / "b", {"apps": [app]})
    pebble = Pebble(tmp_path / "pebble", a.http_port)
    ports = {a: free_port(), b: free_port()}
    try:
        import yaml

        for gw in (a, b):
            gw.config["ingress"].update({
                "https": {"listen": {"addr": f"127.0.0.1:{ports[gw]}"}},
                "redis": {"addr": "127.0.0.1:6379", "key_prefix": prefix},
                "acme": {"directory": pebble.directory, "ca_bundle": pebble.tls_ca, "check_interval": 1},
            })
            gw.config_path.write_text(yaml.safe_dump(gw.config))
        b.start()
        a.start()
        root = tmp_path / "pebble-root.pem"
        root.write_text(pebble.root_pem())
        deadline = time.monotonic() + 60
        serials: dict = {}
        while len(serials) < 2 or None in serials.values():
            assert time.monotonic() < deadline, f"A:\n{a.log()[-2000:]}\nB:\n{b.log()[-2000:]}"
            time.sleep(0.5)
            serials = {gw: _serial(ports[gw], str(root), "shared-acme.test") for gw in (a, b)}
        assert serials[a] == serials[b]
        assert client.hexists(f"{prefix}ingress:acme:cert:shared-acme.test", "chain")
    finally:
        for gw in (a, b):
            gw.stop()
        pebble.stop()
        drop_prefix(client, prefix)
