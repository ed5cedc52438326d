"""``frontier-gevent serve --workers 2``: two processes share the edge port, each
with its own service port, both registered with Frontlas; edges spread over both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml

from frontier.cluster.workers import _take_ports, worker_envs
from frontier.config import Config
from frontier.sdk import Edge, Service
from frontier.sdk.cluster import ClusterService
from frontier.wire.errors import EdgeNotOnline, RpcNotOnline
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import ROOT, free_port, wait_until

pytestmark = pytest.mark.timeout(120)


def _two_free_ports() -> int:
    """A port P with P and P+1 free."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports")



def _serve_workers(tmp_path: Path, config: dict, log: Any = None) -> subprocess.Popen:
    """``frontier-gevent serve --workers 2`` on ``config`` (written to a file in
    ``tmp_path``); its output goes to ``log`` (a binary file), or nowhere."""
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config))
    out = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "frontier.cli", "serve", "--config", str(path), "--workers", "2"],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out,
                            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL)

def test_workers_share_the_edge_port(cluster: Cluster, tmp_path: Path) -> None:
    fl = cluster.frontlas()
    sb_port, eb_port, obs_port = _two_free_ports(), free_port(), _two_free_ports()
    config = {
        "servicebound": {"listen": {"addr": f"127.0.0.1:{sb_port}"}},
        "observability": {"addr": f"127.0.0.1:{obs_port}"},
        "edgebound": {"listen": {"addr": f"127.0.0.1:{eb_port}"}},
        "frontlas": {"enable": True, "dial": {"addrs": [fl.plane_addr]}},
        "daemon": {"frontier_id": "host"},
        "controlplane": {"enable": False},  # on by default, on 127.0.0.1:30010
        "limits": {"drain_timeout": 1},
    }
    log = open(tmp_path / "workers.log", "wb")
    proc = _serve_workers(tmp_path, config, log)
    try:
        cluster.wait_registered("host-0", "host-1", timeout=20)
        listed = fl.frontiers()
        assert {f["advertised_eb_addr"] for f in listed.values()} == {f"127.0.0.1:{eb_port}"}
        assert sorted(f["advertised_sb_addr"] for f in listed.values()) == [f"127.0.0.1:{sb_port}", f"127.0.0.1:{sb_port + 1}"]
        for port in (obs_port, obs_port + 1):  # each worker its own observability listener
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json() == {"status": "ready"}

        edges = [cluster.client(Edge, f"127.0.0.1:{eb_port}") for _ in range(30)]
        for edge in edges:
            edge.register("ping", lambda req, e=edge: b"%d" % e.edge_id)
        wait_until(lambda: len(fl.edges()) == 30, 10, what="all edges reported")
        per_worker = {fid: f["edge_count"] for fid, f in fl.frontiers().items()}
        assert sum(per_worker.values()) == 30 and min(per_worker.values()) > 0, per_worker

        svc = cluster.client(ClusterService, fl.rest_addr)
        assert svc.frontiers == ["host-0", "host-1"]
        for edge in edges:
            assert svc.call(edge.edge_id, "ping", b"") == b"%d" % edge.edge_id
        for edge in edges:
            edge.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        log.close()
    assert code == 0, (tmp_path / "workers.log").read_text()
    assert fl.frontiers() == {}  # both unregistered on the way out


def _worker_pid(parent: int, frontier_id: str) -> int:
    """The pid of the child of ``parent`` running as ``frontier_id`` (from its environment)."""
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"FRONTIER__DAEMON__FRONTIER_ID={frontier_id}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker {frontier_id} among {children}")


def test_worker_ports_skip_the_edge_port_and_each_other() -> None:
    assert _take_ports(30011, 3, {30012}) == [30011, 30013, 30014]
    assert _take_ports(30010, 2, {30012, 30011, 30013}) == [30010, 30014]
    assert _take_ports(0, 2, {30012}) == [0, 0]
    # the observability listeners: 9091 and up, past Frontlas' 9092
    envs = worker_envs(Config(), 3, 30012, "host")
    assert [e["FRONTIER__OBSERVABILITY__ADDR"] for e in envs] == ["0.0.0.0:9091", "0.0.0.0:9093", "0.0.0.0:9094"]


def test_a_crashed_worker_is_restarted(cluster: Cluster, tmp_path: Path) -> None:
    fl = cluster.frontlas()
    eb_port = free_port()
    config = {
        "servicebound": {"listen": {"addr": "127.0.0.1:0"}},
        "edgebound": {"listen": {"addr": f"127.0.0.1:{eb_port}"}},
        "observability": {"addr": "127.0.0.1:0"},  # never the shared default 9091 (and up)
        "frontlas": {"enable": True, "dial": {"addrs": [fl.plane_addr]}},
        "daemon": {"frontier_id": "crashy"},
        "controlplane": {"enable": False},
    }
    proc = _serve_workers(tmp_path, config)
    try:
        cluster.wait_registered("crashy-0", "crashy-1", timeout=20)
        old = fl.frontiers()["crashy-1"]["advertised_sb_addr"]
        os.kill(_worker_pid(proc.pid, "crashy-1"), signal.SIGKILL)
        # the restarted worker registers again once the killed one's TTL passed (same id)
        wait_until(lambda: fl.frontiers().get("crashy-1", {}).get("advertised_sb_addr") not in (None, old), 20,
                   what="the crashed worker is back")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_call_reaches_a_service_on_another_worker_only_through_that_worker(cluster: Cluster, tmp_path: Path) -> None:
    """Workers do not forward to each other: an edge's call goes to a service connected
    to the edge's own worker. A ``ClusterService`` connects to every worker (through
    Frontlas), so every edge reaches it and it reaches every edge; a plain ``Service``
    on one worker's service port sees only that worker's edges, and the others get a
    typed error."""
    fl = cluster.frontlas()
    sb_port, eb_port = _two_free_ports(), free_port()
    config = {
        "servicebound": {"listen": {"addr": f"127.0.0.1:{sb_port}"}},
        "edgebound": {"listen": {"addr": f"127.0.0.1:{eb_port}"}},
        "observability": {"addr": "127.0.0.1:0"},
        "frontlas": {"enable": True, "dial": {"addrs": [fl.plane_addr]}},
        "daemon": {"frontier_id": "cross"},
        "controlplane": {"enable": False},
        "limits": {"drain_timeout": 1},
    }
    proc = _serve_workers(tmp_path, config)
    try:
        cluster.wait_registered("cross-0", "cross-1", timeout=20)
        edges = [cluster.client(Edge, f"127.0.0.1:{eb_port}") for _ in range(24)]
        for edge in edges:
            edge.register("ping", lambda req, e=edge: b"%d" % e.edge_id)
        wait_until(lambda: len(fl.edges()) == 24, 10, what="all edges reported")
        where = fl.edges()
        on = {fid: [e for e in edges if where[e.edge_id] == fid] for fid in ("cross-0", "cross-1")}
        assert on["cross-0"] and on["cross-1"], where

        # a plain Service on worker 0's port: worker 0's edges only
        plain = cluster.client(Service, f"127.0.0.1:{sb_port}", name="plain")
        plain.register("plain_echo", lambda req: b"plain:" + req.data)
        for edge in on["cross-0"]:
            assert edge.call("plain_echo", b"x", timeout=5) == b"plain:x"
            assert plain.call(edge.edge_id, "ping", b"", timeout=5) == b"%d" % edge.edge_id
        for edge in on["cross-1"]:
            with pytest.raises(RpcNotOnline):  # worker 1 has no service with that method
                edge.call("plain_echo", b"x", timeout=5)
            with pytest.raises(EdgeNotOnline):  # worker 0 does not hold that edge
                plain.call(edge.edge_id, "ping", b"", timeout=5)

        # a ClusterService: one connection per worker, every edge both ways
        svc = cluster.client(ClusterService, fl.rest_addr, name="cluster")
        svc.register("cluster_echo", lambda req: b"cluster:%d" % req.edge_id)
        wait_until(lambda: len(svc.frontiers) == 2, 10, what="the cluster service on both workers")
        for edge in edges:
            assert edge.call("cluster_echo", b"x", timeout=5) == b"cluster:%d" % edge.edge_id
            assert svc.call(edge.edge_id, "ping", b"", timeout=5) == b"%d" % edge.edge_id
        for edge in edges:
            edge.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def _listeners(port: int) -> int:
    """How many sockets listen on ``port`` (one per worker)."""
    return sum(1 for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port)


def _raw_edge(eb_port: int) -> socket.socket | None:
    """A raw edge: TCP connect, Hello, Welcome; None if refused or reset (closed at accept)."""
    from frontier.wire.codec import encode_frame
    from frontier.wire.events import PROTOCOL_VERSION, Hello

    sock = socket.socket()
    sock.settimeout(5)
    try:
        sock.connect(("127.0.0.1", eb_port))
        sock.sendall(encode_frame(Hello(PROTOCOL_VERSION, "edge")))
        head = sock.recv(4)
        if len(head) < 4:
            sock.close()
            return None
        return sock
    except OSError:
        sock.close()
        return None


def test_a_full_worker_leaves_the_reuseport_spread(tmp_path: Path) -> None:
    """With ``limits.max_edge_connections``, a worker holding its cap takes no more
    connections from the kernel: edges connected one by one all land on a worker with
    room (without the valve about half of the second worker's share would be reset at
    the full one), past both caps connects are refused, and a worker that lost an edge
    takes one again."""
    eb_port = free_port()
    config = {
        "servicebound": {"listen": {"addr": "127.0.0.1:0"}},
        "edgebound": {"listen": {"addr": f"127.0.0.1:{eb_port}"}},
        "observability": {"addr": "127.0.0.1:0"},
        "controlplane": {"enable": False},
        "limits": {"max_edge_connections": 4, "drain_timeout": 1},
        "daemon": {"frontier_id": "valve"},
    }
    proc = _serve_workers(tmp_path, config)
    held: list[socket.socket] = []
    try:
        wait_until(lambda: _listeners(eb_port) == 2, 30, what="both workers listening on the edge port")
        for i in range(8):
            sock = _raw_edge(eb_port)
            assert sock is not None, f"edge {i + 1} of 8 was refused with room on a worker"
            held.append(sock)
        assert _raw_edge(eb_port) is None  # both workers full
        held.pop().close()
        wait_until(lambda: (lambda s: held.append(s) or True if s is not None else False)(_raw_edge(eb_port)), 10,
                   what="the worker with room again takes an edge")
    finally:
        for sock in held:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
