"""Frontlas' ``/metrics``, scraped for real: on the cluster API port (what the
ServiceMonitor scrapes) and on Go's observability listener (9092 by default), with
real frontiers, edges and services, and with its Redis killed."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from frontier.sdk import Edge, Service
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import RedisServer, new_prefix, start_all, wait_until

pytestmark = pytest.mark.timeout(120)


def scrape(addr: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` of ``addr`` as ``{(sample name, sorted labels): value}``."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_frontlas_metrics_count_the_cluster_and_time_redis(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    start_all([cluster.frontier("m1", start=False), cluster.frontier("m2", start=False)])
    cluster.wait_registered("m1", "m2")
    m1, m2 = cluster.frontiers["m1"], cluster.frontiers["m2"]
    cluster.client(Service, m1.service_addr, name="billing")
    for _ in range(3):
        cluster.client(Edge, m1.edge_addr)
    cluster.client(Edge, m2.edge_addr)
    probes = f"127.0.0.1:{fl.observability_port}"

    def counted() -> bool:
        got = scrape(fl.rest_addr)
        return (got.get(("frontlas_edges", (("frontier_id", "m1"),))) == 3
                and got.get(("frontlas_edges", (("frontier_id", "m2"),))) == 1)

    wait_until(counted, 15, what="both frontiers' edges in the scrape")
    for addr in (fl.rest_addr, probes):  # the same registry on both ports
        got = scrape(addr)
        assert got[("frontlas_frontiers", ())] == 2
        assert got[("frontlas_services", (("frontier_id", "m1"),))] == 1
        assert got[("frontlas_services", (("frontier_id", "m2"),))] == 0
        assert got[("frontlas_redis_up", ())] == 1
        assert got[("frontlas_plane_connections", ())] == 2
        assert got[("frontlas_redis_duration_seconds_count", (("op", "register"),))] >= 2
        assert got[("frontlas_redis_duration_seconds_count", (("op", "report"),))] >= 1
        assert got[("frontlas_redis_duration_seconds_count", (("op", "list_frontiers"),))] >= 1
        assert not [name for name, _ in got if name.startswith("frontier_")], "the gateway's metrics leaked in"
        assert any(name.startswith("process_") for name, _ in got)
    assert status(f"http://{probes}/healthz") == 200
    assert status(f"http://{probes}/readyz") == 200


def test_frontlas_metrics_show_redis_down(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    cluster = Cluster(tmp_path, new_prefix(), redis_addr=redis_server.addr)
    try:
        fl = cluster.frontlas()
        probes = f"127.0.0.1:{fl.observability_port}"
        wait_until(lambda: status(f"http://{probes}/readyz") == 200, 10, what="ready")
        redis_server.kill()
        got = scrape(fl.rest_addr)  # the scrape itself still succeeds
        assert got[("frontlas_redis_up", ())] == 0
        assert ("frontlas_frontiers", ()) not in got
        assert got[("frontlas_redis_errors_total", (("op", "list_frontiers"),))] >= 1
        assert status(f"http://{probes}/readyz") == 503
        assert status(f"http://{probes}/healthz") == 200
        assert scrape(probes)[("frontlas_redis_errors_total", (("op", "ping"),))] >= 1
    finally:
        cluster.close()
        redis_server.stop()
