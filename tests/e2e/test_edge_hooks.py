"""Who hears an edge's hooks: one service picked by hashby (Go's way), another one when
the picked one is gone, or every one with ``exchange.edge_hooks: all``; real gateway,
real SDK services and edges."""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict

import pytest
import requests

from frontier.sdk import Edge, Refused, Service
from frontier.wire.codec import HEADER, decode_body, encode_frame
from frontier.wire.errors import ErrorCode
from frontier.wire.events import PROTOCOL_VERSION, GoAway, Hello, Refuse
from tests.e2e.proc_tools import wait_until

pytestmark = pytest.mark.timeout(120)


def _services(clients, gw, names, online=None):
    """Services registering both hooks; returns them and ``heard[hook][edge_id] -> [names]``."""
    heard: dict[str, dict[int, list[str]]] = {"online": defaultdict(list), "offline": defaultdict(list)}
    made = []
    for name in names:
        svc = clients(Service, gw.service_addr, name=name)

        def on_online(edge_id, meta, addr, name=name):
            heard["online"][edge_id].append(name)
            if online is not None:
                online(name, edge_id)

        svc.register_edge_online(on_online)
        svc.register_edge_offline(lambda edge_id, meta, addr, name=name: heard["offline"][edge_id].append(name))
        made.append(svc)
    return made, heard


def test_each_edge_is_announced_to_one_service_picked_by_edge_id(gateway_factory, clients):
    gw = gateway_factory()
    _, heard = _services(clients, gw, ["a", "b"])
    ids = [5001, 5002, 5003, 5004]
    for edge_id in ids:
        edge = Edge(gw.edge_addr, edge_id=edge_id, timeout=5.0)
        edge.close()
    wait_until(lambda: sorted(heard["offline"]) == ids, 10, what="every offline hook")
    for edge_id in ids:
        expected = ["a", "b"][edge_id % 2]  # hashby edgeid over the services, oldest first
        assert heard["online"][edge_id] == [expected], (edge_id, dict(heard["online"]))
        assert heard["offline"][edge_id] == [expected], (edge_id, dict(heard["offline"]))


def test_a_slow_replica_delays_only_the_edges_it_was_picked_for(gateway_factory, clients):
    gw = gateway_factory()
    _services(clients, gw, ["slow", "fast"], online=lambda name, edge_id: time.sleep(3) if name == "slow" else None)
    started = time.monotonic()
    with Edge(gw.edge_addr, edge_id=6001, timeout=10.0):  # 6001 % 2 == 1: "fast"
        assert time.monotonic() - started < 1.5
    started = time.monotonic()
    with Edge(gw.edge_addr, edge_id=6000, timeout=10.0):  # "slow": waits for it, as Go does
        assert time.monotonic() - started >= 2.5


def test_the_next_replica_is_asked_when_the_picked_one_is_gone(gateway_factory, clients):
    gw = gateway_factory()
    services: list[Service] = []

    def online(name, edge_id):
        if name == "dying":  # it goes away while the gateway waits for its answer
            threading.Thread(target=services[0].close, daemon=True).start()
            time.sleep(5)

    made, heard = _services(clients, gw, ["dying", "survivor"], online=online)
    services.extend(made)
    started = time.monotonic()
    with Edge(gw.edge_addr, edge_id=7000, timeout=10.0) as edge:  # 7000 % 2 == 0: "dying"
        assert edge.edge_id == 7000
    assert time.monotonic() - started < 4
    assert heard["online"][7000] == ["dying", "survivor"]


def test_a_refusal_by_the_picked_service_refuses_the_edge(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr, name="bouncer")

    def online(edge_id, meta, addr):
        if meta == b"unwelcome":
            raise ValueError("not you")

    svc.register_edge_online(online)
    with pytest.raises(Refused, match="not you"):
        Edge(gw.edge_addr, meta=b"unwelcome", timeout=5.0, reconnect=False)


def test_broadcast_is_an_explicit_option(gateway_factory, clients):
    gw = gateway_factory({"exchange": {"edge_hooks": "all"}})
    _, heard = _services(clients, gw, ["a", "b"])
    Edge(gw.edge_addr, edge_id=8001, timeout=5.0).close()
    wait_until(lambda: sorted(heard["offline"][8001]) == ["a", "b"], 10, what="both heard it leave")
    assert sorted(heard["online"][8001]) == ["a", "b"]


def test_an_edge_kicked_while_its_online_hook_runs_leaves_and_the_late_answer_harms_nobody(gateway_factory, clients):
    """The edge's reader is interrupted while it waits for the hook's answer; the
    answer that comes later finds nobody waiting and changes nothing for the others."""
    gw = gateway_factory(control=True)
    release = threading.Event()
    (svc,), heard = _services(clients, gw, ["slow"], online=lambda name, edge_id: release.wait(10) if edge_id == 7100 else None)
    bystander = clients(Edge, gw.edge_addr, edge_id=7101, timeout=5.0)
    bystander.register("echo", lambda req: req.data)

    raw = socket.create_connection(("127.0.0.1", gw.edge_port), timeout=5)
    try:
        raw.sendall(encode_frame(Hello(PROTOCOL_VERSION, "edge", edge_id=7100)))
        wait_until(lambda: heard["online"][7100] == ["slow"], 10, what="the hook is running")
        resp = requests.delete(f"http://{gw.control_addr}/v1/edges/7100", params={"reconnect": "false"}, timeout=5)
        assert resp.status_code == 200, resp.text
        raw.settimeout(5)
        frames = b""
        while chunk := raw.recv(65536):  # the goodbye, then the close: never a Welcome
            frames += chunk
        size = HEADER.unpack_from(frames)[0]
        goodbye = decode_body(frames[HEADER.size:HEADER.size + size])
        assert isinstance(goodbye, (Refuse, GoAway)) and goodbye.code == ErrorCode.KICKED, goodbye
    finally:
        raw.close()
    release.set()  # the late answer
    time.sleep(0.3)
    assert svc.call(7101, "echo", b"still here", timeout=5) == b"still here"
    with Edge(gw.edge_addr, edge_id=7102, timeout=5.0) as edge:
        assert edge.edge_id == 7102
    assert heard["online"][7102] == ["slow"]
    assert "Traceback" not in gw.log(), gw.log()
