"""Processes and probes of the cluster tests: Frontlas, frontiers, a private Redis.

Everything runs for real on loopback: ``FrontlasProcess`` is ``python -m
frontlas.cli serve``, frontiers are :class:`tests.gateway.GatewayProcess` with
``frontlas.enable``, and ``RedisServer`` is a ``redis-server`` of our own (for tests
that kill Redis). Tests on the shared Redis use a key prefix of their own.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Sequence

import redis
import yaml

from tests.e2e.proc_tools import wait_until  # noqa: F401  (cluster tests import it from here)
from tests.gateway import ROOT, GatewayProcess, ServerProcess, deep_merge, free_port, wait_port  # noqa: F401  (ROOT, too)

#: short expirations so dead frontiers vanish within a test (a frontier heartbeats every second)
TTL = 3




def new_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:10]}:"


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN, never KEYS or FLUSHALL)."""
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=prefix + "*", count=500):
        pipe.delete(key)  # one key per DEL: keys of a Redis Cluster node span slots
    pipe.execute()


class RedisServer:
    """A ``redis-server`` of our own on a free port, stopped by its PID."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port("127.0.0.1", self.port)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()


class FrontlasProcess(ServerProcess):
    """A Frontlas subprocess; ``api`` is its REST base URL, ``plane_addr`` where frontiers report."""

    module = "frontlas.cli"

    def __init__(self, workdir: Path, *, prefix: str, redis_addr: str = "127.0.0.1:6379", ttl: int = TTL,
                 control_port: int = 0, plane_port: int = 0, extra: dict[str, Any] | None = None) -> None:
        self.control_port = control_port or free_port()
        self.plane_port = plane_port or free_port()
        #: Go's /healthz, /readyz, /metrics listener (never the default 9092 that parallel runs would share)
        self.observability_port = free_port()
        config = {
            "control_plane": {"listen": {"addr": f"127.0.0.1:{self.control_port}"}},
            "observability": {"addr": f"127.0.0.1:{self.observability_port}"},
            "frontier_plane": {
                "listen": {"addr": f"127.0.0.1:{self.plane_port}"},
                "expiration": {"service_meta": ttl, "edge_meta": ttl, "frontier_meta": ttl},
            },
            "redis": {"mode": "standalone", "standalone": {"addr": redis_addr}, "key_prefix": prefix},
            "limits": {"heartbeat_interval": 1.0},
            "log": {"level": "info"},
        }
        self.config = deep_merge(config, extra or {})
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / f"frontlas-{self.control_port}.yaml", workdir / f"frontlas-{self.control_port}.log")
        self.config_path.write_text(yaml.safe_dump(self.config))

    @property
    def rest_addr(self) -> str:
        return f"127.0.0.1:{self.control_port}"

    @property
    def plane_addr(self) -> str:
        return f"127.0.0.1:{self.plane_port}"

    def ports(self) -> tuple[int, ...]:
        return (self.control_port, self.plane_port)

    # -- REST ------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET a cluster API path; the decoded JSON (404 raises ``urllib.error.HTTPError``)."""
        query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        url = f"http://{self.rest_addr}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)

    def frontiers(self) -> dict[str, dict[str, Any]]:
        """Live frontiers by id."""
        return {f["frontier_id"]: f for f in self.get("/cluster/v1/frontiers")["frontiers"]}

    def edges(self) -> dict[int, str]:
        """Every edge id -> frontier id, walking all pages."""
        out, cursor = {}, 0
        while True:
            page = self.get("/cluster/v1/edges", cursor=cursor, count=50)
            out.update({e["edge_id"]: e["frontier_id"] for e in page["edges"]})
            cursor = page["cursor"]
            if cursor == 0:
                return out


def frontier_config(fid: str, frontlas: Sequence[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A frontier's config reporting to ``frontlas`` (frontier-plane addresses) as ``fid``."""
    config = {"frontlas": {"enable": True, "dial": {"addrs": list(frontlas)}}, "daemon": {"frontier_id": fid}}
    return deep_merge(config, extra or {})


def start_all(procs: Sequence[ServerProcess]) -> None:
    """Start several Frontlas/frontier processes at once (they boot in parallel)."""
    for p in procs:
        p.spawn()
    for p in procs:
        p.wait_ready()


def kill9(gw: GatewayProcess) -> None:
    """``kill -9`` a frontier and reap it."""
    gw.stop(sig=signal.SIGKILL)


def restart(gw: GatewayProcess) -> GatewayProcess:
    """Start a stopped frontier again on the same ports."""
    start_all([gw])
    return gw



class RedisClusterServers:
    """A three-master Redis Cluster of our own (``redis-cli --cluster create``), stopped by PID."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("redis-server and redis-cli are needed (apt-get install -y redis-server)")
        self.workdir = workdir
        self.ports = [free_port() for _ in range(nodes)]
        self.bus_ports = [free_port() for _ in range(nodes)]  # the default (port + 10000) may not exist
        self.procs: list[subprocess.Popen] = []

    @property
    def addrs(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def start(self) -> "RedisClusterServers":
        for port, bus in zip(self.ports, self.bus_ports):
            node_dir = self.workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no", "--dir", str(node_dir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_port("127.0.0.1", port)
        subprocess.run(["redis-cli", "--cluster", "create", *self.addrs, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        clients = [redis.Redis(port=p, decode_responses=True) for p in self.ports]
        wait_until(lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in clients), 20, what="cluster_state:ok")
        for c in clients:
            c.close()
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
