"""Authentication at the handshake: HMAC edge tokens (valid, expired, forged, for
another edge, bound ids, rotation), service shared secrets, the edge_online hook as
the application's own check after the token, typed refusals and their metric."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from frontier.auth import EdgeClaims, mint_edge_token, verify_edge_token
from frontier.sdk import Edge, Refused, Service, Unauthorized
from frontier.wire.errors import ErrorCode
from frontier.wire.events import PROTOCOL_VERSION, ROLE_EDGE, Hello, Refuse, Welcome
from tests.e2e.proc_tools import RawClient, wait_until
from tests.gateway import ROOT
from tests.security.conftest import metric

SECRET = "edge-secret-0123456789abcdef"
OLD_SECRET = "older-edge-secret-0123456789"
SERVICE_SECRET = "service-secret-0123456789abcdef"


# -- the token format, without a gateway -------------------------------------------------------------


def test_tokens_round_trip_and_reject_every_kind_of_wrong():
    now = 1_700_000_000.0
    token = mint_edge_token(SECRET, 42, 60, now=now)
    assert verify_edge_token(token, [SECRET], now=now + 59) == EdgeClaims(42, int(now + 60))
    assert verify_edge_token(token.encode(), [OLD_SECRET, SECRET], now=now) .edge_id == 42  # any secret may verify
    assert verify_edge_token(mint_edge_token(SECRET, None, None), [SECRET]) == EdgeClaims(None, 0)
    with pytest.raises(Unauthorized, match="expired"):
        verify_edge_token(token, [SECRET], now=now + 61)
    with pytest.raises(Unauthorized, match="signature"):
        verify_edge_token(token, [OLD_SECRET], now=now)
    head, who, expiry, sig = token.split(".")
    for forged in (f"{head}.43.{expiry}.{sig}", f"{head}.{who}.{int(expiry) + 3600}.{sig}", f"{head}.*.{expiry}.{sig}",
                   f"{head}.{who}.{expiry}.{sig[:-2]}AA"):
        with pytest.raises(Unauthorized, match="signature"):
            verify_edge_token(forged, [SECRET], now=now)
    for garbage in ("", b"\xff\xfe", "fe1.1.2", "fe2.1.2.x", "fe1.-1.2.x", "fe1.1.2.3.4", "x" * 5000, "fe1.1e3.0.x"):
        with pytest.raises(Unauthorized):
            verify_edge_token(garbage, [SECRET], now=now)
    with pytest.raises(ValueError):
        mint_edge_token(SECRET, -1, 60)
    with pytest.raises(ValueError):
        mint_edge_token(SECRET, 1, 0)


def test_the_cli_mints_tokens_the_gateway_config_verifies(tmp_path):
    config = tmp_path / "frontier.yaml"
    config.write_text(yaml.safe_dump({"edgebound": {"auth": {"enable": True, "secrets": [SECRET]}}}))
    cli = [sys.executable, "-m", "frontier.cli", "token"]
    out = subprocess.run([*cli, "mint", "--edge-id", "7", "--ttl", "120", "--config", str(config)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    claims = verify_edge_token(token, [SECRET])
    assert claims.edge_id == 7 and 0 < claims.expires - time.time() <= 121
    check = subprocess.run([*cli, "verify", token, "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "edge 7" in check.stdout, check
    secret_file = tmp_path / "secret"
    secret_file.write_text(OLD_SECRET + "\n")
    wrong = subprocess.run([*cli, "verify", token, "--secret-file", str(secret_file)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 1 and "signature" in wrong.stdout
    none = subprocess.run([*cli, "mint", "--any-edge"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert none.returncode == 2 and "secret" in none.stderr
    empty = subprocess.run([*cli, "mint", "--any-edge", "--config", "etc/frontier.yaml"], cwd=ROOT, capture_output=True,
                           text=True, timeout=30)
    assert empty.returncode == 2
    assert "etc/frontier.yaml: edgebound.auth.secrets is empty; put a secret of at least 16 characters there" in empty.stderr


# -- against a gateway ---------------------------------------------------------------------------------


@pytest.fixture
def auth_gw(gateway_factory):
    return gateway_factory({
        "edgebound": {"auth": {"enable": True, "secrets": [SECRET, OLD_SECRET]}},
        "servicebound": {"auth": {"enable": True, "secrets": [SERVICE_SECRET]}},
    }, control=True)


def test_edge_tokens_at_the_gateway(auth_gw, clients):
    gw = auth_gw
    svc = clients(Service, gw.service_addr, credentials=SERVICE_SECRET)
    svc.register("whoami", lambda req: str(req.edge_id).encode())
    online: list[int] = []
    svc.register_edge_online(lambda edge_id, meta, addr: online.append(edge_id))
    svc.register_get_edge_id(lambda meta: 999)  # a bound token's id wins over the hook

    bound = clients(Edge, gw.edge_addr, credentials=mint_edge_token(SECRET, 1001, 60))
    assert bound.edge_id == 1001 and bound.call("whoami", b"") == b"1001"
    asked = clients(Edge, gw.edge_addr, edge_id=1002, credentials=mint_edge_token(SECRET, 1002, 60).encode())
    assert asked.edge_id == 1002
    rotated = clients(Edge, gw.edge_addr, credentials=lambda: mint_edge_token(OLD_SECRET, 1003, 60))
    assert rotated.edge_id == 1003
    anyone = clients(Edge, gw.edge_addr, credentials=mint_edge_token(SECRET, None, 60))
    assert anyone.edge_id == 999  # a wildcard token leaves the id to get_edge_id
    assert sorted(online) == [999, 1001, 1002, 1003]

    refused_before = metric(gw, "frontier_connections_refused_total", role="edge", reason="unauthorized")
    cases = {
        "missing": dict(),
        "expired": dict(credentials=mint_edge_token(SECRET, 2001, 1, now=time.time() - 10)),
        "forged": dict(credentials=mint_edge_token("not-the-gateway-secret-xx", 2002, 60)),
        "tampered": dict(credentials=mint_edge_token(SECRET, 2003, 60).replace(".2003.", ".2004.")),
        "other edge": dict(edge_id=2005, credentials=mint_edge_token(SECRET, 2006, 60)),
        "garbage": dict(credentials=b"\x00" * 100),
    }
    for name, kwargs in cases.items():
        with pytest.raises(Unauthorized) as info:
            Edge(gw.edge_addr, timeout=5.0, reconnect=False, **kwargs)
        assert info.value.code == ErrorCode.UNAUTHORIZED, name
        assert isinstance(info.value, Refused)  # Unauthorized is a Refused
    assert "expired" in _refusal(gw, mint_edge_token(SECRET, 2001, 1, now=time.time() - 10))
    assert "for edge 2006, not 2005" in _refusal(gw, mint_edge_token(SECRET, 2006, 60), edge_id=2005)
    # refused before any hook ran: edge_online never heard of them
    assert sorted(online) == [999, 1001, 1002, 1003]
    wait_until(lambda: metric(gw, "frontier_connections_refused_total", role="edge", reason="unauthorized")
               >= refused_before + len(cases) + 2, 5, what="the refusals counted")
    assert bound.call("whoami", b"") == b"1001"


def _refusal(gw, token: str, **hello) -> str:
    with RawClient(gw.edge_addr) as raw:
        raw.send(Hello(PROTOCOL_VERSION, ROLE_EDGE, credentials=token.encode(), **hello))
        events = raw.read_until_closed(5)
    assert len(events) == 1 and isinstance(events[0], Refuse) and events[0].code == ErrorCode.UNAUTHORIZED, events
    return events[0].message


def test_edge_online_stays_the_applications_own_check(auth_gw, clients):
    gw = auth_gw
    svc = clients(Service, gw.service_addr, credentials=SERVICE_SECRET)

    def online(edge_id, meta, addr):
        if meta == b"banned":
            raise PermissionError("this device is banned by the application")

    svc.register_edge_online(online)
    with pytest.raises(Refused) as info:
        Edge(gw.edge_addr, meta=b"banned", credentials=mint_edge_token(SECRET, 3001, 60), timeout=5.0, reconnect=False)
    assert not isinstance(info.value, Unauthorized) and "banned by the application" in str(info.value)
    assert clients(Edge, gw.edge_addr, meta=b"fine", credentials=mint_edge_token(SECRET, 3002, 60)).edge_id == 3002


def test_service_secret(auth_gw, clients):
    gw = auth_gw
    assert clients(Service, gw.service_addr, credentials=SERVICE_SECRET).service_id > 0
    for wrong in (None, "", "service-secret-0123456789abcdeX", SECRET):
        with pytest.raises(Unauthorized):
            Service(gw.service_addr, credentials=wrong, timeout=5.0, reconnect=False)
    # an edge token is no service secret, and the edge port takes no services at all
    with pytest.raises(Refused):
        Service(gw.edge_addr, credentials=mint_edge_token(SECRET, 1, 60), timeout=5.0, reconnect=False)
    assert metric(gw, "frontier_connections_refused_total", role="service", reason="unauthorized") >= 4


def test_without_auth_credentials_are_ignored(gateway_factory, clients):
    gw = gateway_factory()
    edge = clients(Edge, gw.edge_addr, credentials=b"whatever")
    with RawClient(gw.edge_addr) as raw:
        assert isinstance(raw.hello_edge(credentials=b"x" * 100), Welcome)
    assert edge.connected


def test_a_connection_ends_when_its_token_expires_and_fresh_credentials_reconnect_it(auth_gw, clients):
    gw = auth_gw
    svc = clients(Service, gw.service_addr, credentials=SERVICE_SECRET)
    svc.register("echo", lambda req: req.data)
    static = clients(Edge, gw.edge_addr, credentials=mint_edge_token(SECRET, 3001, 2), reconnect=False)
    renewing = clients(Edge, gw.edge_addr, credentials=lambda: mint_edge_token(SECRET, 3002, 4))
    assert static.call("echo", b"before") == b"before"
    first_link = renewing._link
    # the static token lapses within ~3 s (expiry rounds up) and a reaper sweep (1 s) later the
    # gateway closes the connection with UNAUTHORIZED; that client does not reconnect
    wait_until(lambda: not static.connected, 8, what="the expired edge cut off")
    with pytest.raises(Unauthorized, match="expired"):
        static.call("echo", b"after")
    # the edge whose credentials are a callable came back with a fresh token, same id
    wait_until(lambda: renewing._link is not first_link and renewing.connected, 10, what="the renewing edge back")
    assert renewing.edge_id == 3002
    assert renewing.call("echo", b"still here") == b"still here"
