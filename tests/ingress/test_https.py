"""HTTPS on the ingress with certificates from files: SNI picks the certificate,
changed files reach new connections without a restart, and the backend learns the
scheme from X-Forwarded-Proto."""

from __future__ import annotations

import json
import shutil
import time

from tests.gateway import free_port
from tests.security.certs import issue, make_ca

from .tls_client import https_get


def test_https_sni_reload_and_forwarded_proto(ingress_gateway, webapp, tmp_path) -> None:
    ca = make_ca(tmp_path / "pki", "ca", "test CA")
    alpha = issue(ca, tmp_path / "pki", "alpha", "alpha.test", dns=("alpha.test",))
    beta = issue(ca, tmp_path / "pki", "beta", "beta.test", dns=("beta.test",))
    beta2 = issue(ca, tmp_path / "pki", "beta2", "beta.test", dns=("beta.test",))
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(beta.cert_path, live / "beta.pem")
    shutil.copy(beta.key_path, live / "beta.key")
    https_port = free_port()
    apps = [{"id": h, "frontends": [{"hostname": f"{h}.test"}],
             "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}} for h in ("alpha", "beta")]
    tls = {"enable": True, "certs": [{"cert": str(alpha.cert_path), "key": str(alpha.key_path)},
                                     {"cert": str(live / "beta.pem"), "key": str(live / "beta.key")}]}
    gw = ingress_gateway({"apps": apps, "https": {"listen": {"addr": f"127.0.0.1:{https_port}", "tls": tls}}})
    cafile = str(ca.cert_path)
    serial, data = https_get(https_port, cafile, "alpha.test", "/headers")
    assert serial == alpha.serial
    seen = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-host"] == "alpha.test"
    serial, data = https_get(https_port, cafile, "beta.test", "/hello")
    assert serial == beta.serial and data.endswith(b"hello from edge-app")
    # rotate beta's files: new connections get the new certificate, no restart
    shutil.copy(beta2.key_path, live / "beta.key")
    shutil.copy(beta2.cert_path, live / "beta.pem")
    deadline = time.monotonic() + 10
    while https_get(https_port, cafile, "beta.test", "/hello")[0] != beta2.serial:
        assert time.monotonic() < deadline, "the rotated certificate was not served"
        time.sleep(0.3)
    assert gw.proc.poll() is None
