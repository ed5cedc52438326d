"""Fixtures for the security tests: a throwaway PKI, gateway subprocesses with custom
configs, SDK clients closed after each test, and small probes (RSS, metrics)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.gateway import GatewayProcess
from tests.security.certs import PKI


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI.create(tmp_path_factory.mktemp("pki"))


def tls_block(pki: PKI, *, mtls: bool = False, certs: list[Any] | None = None) -> dict[str, Any]:
    """A listener's ``tls`` config with the PKI's server certificate (and CA for mTLS)."""
    pairs = certs or [pki.server]
    block: dict[str, Any] = {"enable": True, "certs": [{"cert": str(p.cert_path), "key": str(p.key_path)} for p in pairs]}
    if mtls:
        block.update(mtls=True, ca_certs=[str(pki.ca.cert_path)])
    return block


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def metric(gw: GatewayProcess, name: str, **labels: str) -> float:
    """One sample of the gateway's Prometheus ``/metrics`` (0 if absent)."""
    text = requests.get(f"http://{gw.control_addr}/metrics", timeout=5).text
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
