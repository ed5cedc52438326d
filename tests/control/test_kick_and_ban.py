"""Kicks that let the client back (Go's behaviour, the delay told by the gateway) or
not, and bans, through the real control plane (REST, gRPC, CLI) of a real gateway,
seen by real SDK clients and by a raw protocol-version-1 client."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import grpc
import msgpack
import pytest
import requests

from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from frontier.sdk import Banned, Edge, Kicked, Service
from frontier.wire.codec import HEADER, encode_frame
from frontier.wire.errors import ErrorCode
from frontier.wire.events import GoAway, Hello
from tests.e2e.proc_tools import ROOT, wait_until
from tests.gateway import GatewayProcess

pytestmark = pytest.mark.timeout(120)

DELAY = 1.0  # limits.kick_reconnect_delay for these tests (3.0 by default)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with GatewayProcess(tmp_path_factory.mktemp("kick"), {"limits": {"kick_reconnect_delay": DELAY}}, control=True) as gw:
        yield gw


@pytest.fixture
def stub(gw):
    channel = grpc.insecure_channel(gw.control_addr)
    yield pb_grpc.ControlPlaneStub(channel)
    channel.close()


def cli(gw, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frontier.cli", *argv, "--addr", gw.control_addr],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_a_kicked_edge_comes_back_after_the_told_delay(gw):
    events: list[tuple[str, int]] = []
    svc = Service(gw.service_addr, name="kick-watch", timeout=5.0)
    svc.register_edge_online(lambda edge_id, meta, addr: events.append(("online", edge_id)))
    svc.register_edge_offline(lambda edge_id, meta, addr: events.append(("offline", edge_id)))
    edge = Edge(gw.edge_addr, meta=b"kick-me", timeout=5.0)
    edge.register("ping", lambda req: b"pong")
    try:
        edge_id = edge.edge_id
        kicked_at = time.monotonic()
        resp = requests.delete(f"http://{gw.control_addr}/v1/edges/{edge_id}", timeout=5)  # reconnect: default
        assert resp.status_code == 200, resp.text
        with pytest.raises(Kicked) as info:  # meanwhile calls say why at once
            wait_until(lambda: not edge.connected, 5, what="the kick lands")
            edge.call("anything", b"", timeout=2)
        assert info.value.retry_after == pytest.approx(DELAY)
        wait_until(lambda: edge.connected, 10, what="the edge reconnects")
        back_after = time.monotonic() - kicked_at
        assert back_after >= DELAY * 0.9, back_after
        assert edge.edge_id == edge_id and not edge.closed
        assert svc.call(edge_id, "ping", b"") == b"pong"
        wait_until(lambda: events[-2:] == [("offline", edge_id), ("online", edge_id)], 5, what="hooks saw both")
    finally:
        edge.close()
        svc.close()


def test_a_kick_without_reconnect_is_for_good_over_grpc_and_cli(gw, stub):
    svc = Service(gw.service_addr, name="kick-for-good", timeout=5.0)
    edge = Edge(gw.edge_addr, timeout=5.0)
    try:
        stub.KickEdge(pb.KickEdgeRequest(edge_id=edge.edge_id, reconnect=False))
        wait_until(lambda: edge.closed, 5, what="the edge gives up")
        with pytest.raises(Kicked) as info:
            edge.call("x", b"")
        assert info.value.retry_after is None
        time.sleep(DELAY + 0.5)
        assert not edge.connected
        assert requests.get(f"http://{gw.control_addr}/v1/edges/{edge.edge_id}", timeout=5).status_code == 404

        out = cli(gw, "services", "kick", str(svc_id(gw, "kick-for-good")), "--no-reconnect")
        assert out.returncode == 0 and "for good" in out.stdout, out.stderr
        wait_until(lambda: svc.closed, 5, what="the service gives up")
    finally:
        edge.close()
        svc.close()


def svc_id(gw, name: str) -> int:
    body = requests.get(f"http://{gw.control_addr}/v1/services", params={"service": name}, timeout=5).json()
    return body["services"][0]["service_id"]


def test_a_ban_closes_refuses_lists_and_ends(gw, stub):
    edge = Edge(gw.edge_addr, timeout=5.0)
    edge_id = edge.edge_id
    try:
        out = cli(gw, "edges", "ban", str(edge_id), "--duration", "2", "--reason", "flooding")
        assert out.returncode == 0 and f"banned edge {edge_id}" in out.stdout, out.stderr
        banned_at = time.monotonic()
        with pytest.raises(Banned) as info:
            wait_until(lambda: not edge.connected, 5, what="the ban closes it")
            edge.call("x", b"")
        assert 0 < info.value.retry_after <= 2 and "flooding" in str(info.value)

        # listed, through all three front ends
        listed = requests.get(f"http://{gw.control_addr}/v1/bans", timeout=5).json()
        assert [b["edge_id"] for b in listed["bans"]] == [edge_id] and listed["count"] == 1
        assert listed["bans"][0]["reason"] == "flooding" and 0 < listed["bans"][0]["remaining"] <= 2
        assert [b.edge_id for b in stub.ListBans(pb.ListBansRequest()).bans] == [edge_id]
        assert str(edge_id) in cli(gw, "edges", "bans").stdout

        # enforced at admission, with a typed refusal telling the time left
        with pytest.raises(Banned) as refused:
            Edge(gw.edge_addr, edge_id=edge_id, timeout=5.0, reconnect=False)
        assert 0 < refused.value.retry_after <= 2

        # the banned SDK waits the ban out, then comes back with its id
        wait_until(lambda: edge.connected, 10, what="the edge returns after its ban")
        assert time.monotonic() - banned_at >= 1.5
        assert edge.edge_id == edge_id
        assert requests.get(f"http://{gw.control_addr}/v1/bans", timeout=5).json()["count"] == 0
    finally:
        edge.close()


def test_a_ban_is_liftable_and_checked(gw, stub):
    edge_id = 4_000_000_123
    ban = stub.BanEdge(pb.BanEdgeRequest(edge_id=edge_id, duration=600, reason="maintenance"))
    assert ban.edge_id == edge_id and 590 < ban.remaining <= 600 and ban.reason == "maintenance"
    with pytest.raises(Banned):
        Edge(gw.edge_addr, edge_id=edge_id, timeout=5.0, reconnect=False)
    assert stub.LiftBan(pb.LiftBanRequest(edge_id=edge_id)).lifted is True
    assert requests.delete(f"http://{gw.control_addr}/v1/bans/{edge_id}", timeout=5).json() == {"lifted": False}
    with Edge(gw.edge_addr, edge_id=edge_id, timeout=5.0) as edge:
        assert edge.edge_id == edge_id
    base = f"http://{gw.control_addr}/v1/bans/{edge_id}"
    for params in ({}, {"duration": "0"}, {"duration": "-1"}, {"duration": "1e9"}, {"duration": "99999999"},
                   {"duration": "5", "other": "x"}):
        resp = requests.put(base, params=params, timeout=5)
        assert resp.status_code == 400 and resp.json()["reason"] == "INVALID_ARGUMENT", (params, resp.text)
    with pytest.raises(grpc.RpcError) as bad:
        stub.BanEdge(pb.BanEdgeRequest(edge_id=edge_id, duration=0))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert requests.delete(f"http://{gw.control_addr}/v1/edges/1", params={"reconnect": "maybe"}, timeout=5).status_code == 400


def test_a_version_1_client_is_still_served_and_kicked_in_its_own_format(gw):
    """A client written against protocol version 1 gets the two-field GoAway."""
    sock = socket.create_connection(("127.0.0.1", gw.edge_port), timeout=5)
    try:
        sock.sendall(encode_frame(Hello(1, "edge", edge_id=4_000_000_777)))
        welcome = _read_frame(sock)
        assert welcome[0] == 2 and welcome[1] == 4_000_000_777
        done = threading.Event()
        threading.Thread(target=lambda: (requests.delete(f"http://{gw.control_addr}/v1/edges/4000000777", timeout=5),
                                         done.set()), daemon=True).start()
        frame = _read_frame(sock)
        while frame[0] != GoAway.TYPE:  # heartbeats may come first
            frame = _read_frame(sock)
        assert frame == [GoAway.TYPE, ErrorCode.KICKED, "kicked by an operator"]
        assert done.wait(5)
    finally:
        sock.close()


def _read_frame(sock: socket.socket) -> list:
    head = _read_exact(sock, HEADER.size)
    return msgpack.unpackb(_read_exact(sock, HEADER.unpack(head)[0]))


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the gateway closed early"
        data += chunk
    return data


def test_a_banned_client_asks_again_and_comes_back_soon_after_a_lift(gw, stub):
    """A 600 s ban: the SDK asks again every ``ban_recheck`` seconds (refused while the
    ban lasts), so once an operator lifts it the edge is back within that, not in 10 minutes."""
    edge = Edge(gw.edge_addr, timeout=5.0)
    edge.ban_recheck = 1.0
    edge_id = edge.edge_id
    try:
        stub.BanEdge(pb.BanEdgeRequest(edge_id=edge_id, duration=600, reason="checked"))
        wait_until(lambda: not edge.connected, 5, what="the ban lands")
        time.sleep(2.5)  # two rechecks, both refused: the ban holds
        assert not edge.connected
        with pytest.raises(Banned):
            edge.call("x", b"", timeout=1)
        lifted_at = time.monotonic()
        assert stub.LiftBan(pb.LiftBanRequest(edge_id=edge_id)).lifted is True
        wait_until(lambda: edge.connected, 5, what="the edge back after the lift")
        assert time.monotonic() - lifted_at < 2.5
        assert edge.edge_id == edge_id
    finally:
        stub.LiftBan(pb.LiftBanRequest(edge_id=edge_id))
        edge.close()


def test_closing_a_client_that_waits_out_a_ban_ends_its_wait(gw, stub):
    edge = Edge(gw.edge_addr, timeout=5.0)
    edge_id = edge.edge_id
    try:
        stub.BanEdge(pb.BanEdgeRequest(edge_id=edge_id, duration=600))
        wait_until(lambda: not edge.connected, 5, what="the ban lands")
        waiting = wait_until(lambda: [t for t in threading.enumerate()
                                      if t.name == "frontier-edge-reconnect" and t.is_alive()], 5,
                             what="the SDK waiting the ban out in its reconnect thread")
        edge.close()
        for thread in waiting:
            thread.join(2)
            assert not thread.is_alive()
    finally:
        stub.LiftBan(pb.LiftBanRequest(edge_id=edge_id))
        edge.close()


def test_a_kicked_service_comes_back_with_its_registrations(gw):
    svc = Service(gw.service_addr, name="kick-svc", timeout=5.0)
    svc.register("who", lambda req: b"kick-svc")
    edge = Edge(gw.edge_addr, timeout=5.0)
    try:
        first = svc_id(gw, "kick-svc")
        assert requests.delete(f"http://{gw.control_addr}/v1/services/{first}", timeout=5).status_code == 200
        wait_until(lambda: not svc.connected, 5, what="the kick lands")
        wait_until(lambda: svc.connected, 10, what="the service reconnects after the told delay")
        assert svc_id(gw, "kick-svc") != first  # a new connection, registrations replayed
        assert edge.call("who", b"") == b"kick-svc"
    finally:
        edge.close()
        svc.close()
