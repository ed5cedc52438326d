"""The ``crossing`` rows of ``make bench``: what it costs that edges and services sit on
different workers of ``serve --workers 2``.

Workers never forward to each other: a call from an edge goes to a service connected
to the edge's own worker, and a service reaches an edge only through the edge's
worker. A ``ClusterService`` therefore keeps one connection per worker (it lists them
in Frontlas) and routes a call to an edge to the worker it last reached the edge on,
else the one Frontlas names (a REST lookup), else each worker in turn
(``frontier/sdk/cluster.py``). So the cost of "crossing" is on the service's side:
a connection per worker, and a lookup the first time it calls an edge.

Measured here with the real SDK (threads, not gevent) against Frontlas on the local
Redis (127.0.0.1:6379, under a key prefix of its own) and ``serve --workers 2``:
every edge is called by a ``ClusterService`` and by a plain ``Service`` connected to
that edge's worker, alternately; the first call of the ``ClusterService`` to each edge
(the Frontlas lookup) and its later calls are compared with the plain service's, and
an edge's call to a method of each. Latencies in ms, medians over the edges/calls.
Without Redis the rows are skipped (the bench says so).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


def _get(addr: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as resp:
        return json.load(resp)


def _wait(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = cond()
        except OSError:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"crossing: {what} not within {timeout:.0f}s")
        time.sleep(0.1)


def measure(edges: int, calls: int, workdir: Path, log: Callable[[str], None]) -> dict[str, Any] | None:
    """Latency samples (seconds) of the ClusterService and the plain services; None without Redis."""
    if not _redis_up():
        log("  crossing: no Redis on 127.0.0.1:6379, rows skipped")
        return None
    import redis

    from frontier.sdk import ClusterService, Edge, Service

    from loadtests.bench import Target, free_port

    prefix = f"bench-crossing-{os.getpid()}:"
    rest, plane = free_port(), free_port()
    config = workdir / "frontlas.yaml"
    config.write_text(json.dumps({
        "control_plane": {"listen": {"addr": f"127.0.0.1:{rest}"}},
        "frontier_plane": {"listen": {"addr": f"127.0.0.1:{plane}"}},
        "observability": {"addr": f"127.0.0.1:{free_port()}"},
        "redis": {"mode": "standalone", "standalone": {"addr": f"{REDIS[0]}:{REDIS[1]}"}, "key_prefix": prefix},
        "log": {"level": "warn"},
    }))
    log_file = open(workdir / "frontlas.log", "ab")
    frontlas = subprocess.Popen([sys.executable, "-m", "frontlas.cli", "serve", "--config", str(config)], cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    target = None
    clients: list[Any] = []
    try:
        _wait("Frontlas", lambda: _get(f"127.0.0.1:{rest}", "/cluster/v1/frontiers") is not None)
        target = Target("gateway", workdir, workers=2, name="gateway-2w-crossing",
                        extra={"frontlas": {"enable": True, "dial": {"addrs": [f"127.0.0.1:{plane}"]}}}).start()
        _wait("both workers in Frontlas", lambda: len(_get(f"127.0.0.1:{rest}", "/cluster/v1/frontiers")["frontiers"]) == 2)
        plains = []
        for addr in target.service_addrs:  # bench-0, bench-1
            svc = Service(addr, name="plain", timeout=10)
            svc.register("plain_echo", lambda req: req.data)
            clients.append(svc)
            plains.append(svc)
        cluster = ClusterService(f"127.0.0.1:{rest}", name="cluster", timeout=10, refresh_interval=3600)
        clients.append(cluster)
        cluster.register("cluster_echo", lambda req: req.data)
        es = []
        for _ in range(edges):
            edge = Edge(target.edge_addr, timeout=10)
            edge.register("ping", lambda req: req.data)
            clients.append(edge)
            es.append(edge)
        _wait("Frontlas lists every edge", lambda: _get(f"127.0.0.1:{rest}", "/cluster/v1/edges/count")["count"] == edges)
        where = {}
        for edge in es:
            doc = _get(f"127.0.0.1:{rest}", f"/cluster/v1/frontier?edge_id={edge.edge_id}")
            where[edge.edge_id] = int(doc["frontier"]["frontier_id"].rsplit("-", 1)[1])
        perf = time.perf_counter
        out: dict[str, list[float]] = {k: [] for k in ("first_cluster", "first_plain", "s2e_cluster", "s2e_plain",
                                                       "e2s_cluster", "e2s_plain")}
        for edge in es:  # first calls: the plain service first, then the cluster service's lookup
            plain = plains[where[edge.edge_id]]
            t = perf()
            plain.call(edge.edge_id, "ping", b"x")
            out["first_plain"].append(perf() - t)
            t = perf()
            cluster.call(edge.edge_id, "ping", b"x")
            out["first_cluster"].append(perf() - t)
        for i in range(calls):
            for edge in es:
                plain = plains[where[edge.edge_id]]
                pairs = [("s2e_plain", lambda: plain.call(edge.edge_id, "ping", b"x")),
                         ("s2e_cluster", lambda: cluster.call(edge.edge_id, "ping", b"x")),
                         ("e2s_plain", lambda: edge.call("plain_echo", b"x")),
                         ("e2s_cluster", lambda: edge.call("cluster_echo", b"x"))]
                for key, fn in (pairs if i % 2 == 0 else pairs[::-1]):
                    t = perf()
                    fn()
                    out[key].append(perf() - t)
        out["per_worker_edges"] = [sum(1 for w in where.values() if w == k) for k in (0, 1)]
        return out
    finally:
        for c in reversed(clients):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing after a measurement; nothing to do
                pass
        if target is not None:
            target.stop()
        frontlas.terminate()
        try:
            frontlas.wait(10)
        except subprocess.TimeoutExpired:
            frontlas.kill()
        try:
            r = redis.Redis(*REDIS)
            keys = list(r.scan_iter(match=prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
            r.close()
        except redis.RedisError:
            pass


def rows(s: Any, workdir: Path, log: Callable[[str], None], row: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The crossing rows: ClusterService (gateway column) against a plain Service on the
    edge's worker (relay column), latency in ms."""
    edges = 40 if s.mode == "full" else 10
    calls = 10 if s.mode == "full" else 3 if s.mode == "quick" else 1
    got = measure(edges, calls, workdir, log)
    if got is None:
        return []
    ms = {k: [v * 1e3 for v in vals] for k, vals in got.items() if k != "per_worker_edges"}
    log(f"  crossing: {edges} SDK edges ({got['per_worker_edges']} per worker), {calls} calls each way per edge: "
        + ", ".join(f"{k} p50 {statistics.median(v):.3f} ms" for k, v in ms.items()))
    base = {"baseline": "plain Service on the edge's worker"}
    return [
        row("crossing: s2e first call (Frontlas lookup)", "ms", ms["first_cluster"], ms["first_plain"], base),
        row("crossing: s2e call, worker known", "ms", ms["s2e_cluster"], ms["s2e_plain"], base),
        row("crossing: e2s call", "ms", ms["e2s_cluster"], ms["e2s_plain"], base),
    ]
