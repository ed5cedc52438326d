"""Prometheus metrics of one Frontlas process, in a registry of its own.

Frontlas serves them at ``/metrics`` on its cluster API port (40011, what
``dist/k8s/servicemonitor.yaml`` scrapes) and on its observability listener (9092).
The registry is private: the frontier gateway's metrics, which this process imports
along with frontier's control-plane code, never appear in it.

- ``frontlas_redis_duration_seconds{op}`` and ``frontlas_redis_errors_total{op}``:
  every Redis call the store makes, timed and counted by operation (a fixed set:
  ``register``, ``report``, ``list_frontiers``, ``ping``, ...).
- ``frontlas_redis_up``: whether Redis answered the scrape's own read.
- ``frontlas_frontiers``, ``frontlas_edges{frontier_id}``,
  ``frontlas_services{frontier_id}``: the cluster as Redis holds it at scrape time
  (one read of the frontier records; every Frontlas replica reports the same).
- ``frontlas_plane_connections``: frontiers connected to this Frontlas instance.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

T = TypeVar("T")


class RedisStats:
    """Latency and failures of Redis calls, by operation."""

    #: latency bucket upper bounds, seconds (a Redis round trip is ~0.1 ms on loopback)
    BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram("frontlas_redis_duration_seconds", "Redis calls made by Frontlas, by operation",
                                 ["op"], registry=registry, buckets=self.BUCKETS)
        self.errors = Counter("frontlas_redis_errors_total", "Redis calls that failed (error or timeout), by operation",
                              ["op"], registry=registry)

    def timed(self, op: str, fn: Callable[[], T]) -> T:
        """Run one Redis call ``fn``, recording its latency, or an error when it raises."""
        label = op.replace(" ", "_")
        start = time.perf_counter()
        try:
            result = fn()
        except Exception:
            self.errors.labels(label).inc()
            raise
        self.latency.labels(label).observe(time.perf_counter() - start)
        return result


class _Frontier(Protocol):
    frontier_id: str
    edge_count: int
    service_count: int


class ClusterStats:
    """A collector of the cluster's size, read from Redis at scrape time.

    ``frontiers`` is the store's read of the live frontier records; when it raises
    (Redis down), the scrape still succeeds, with ``frontlas_redis_up 0`` and no
    cluster figures.
    """

    def __init__(self, frontiers: Callable[[], list[_Frontier]], connections: Callable[[], int]) -> None:
        self._frontiers = frontiers
        self._connections = connections

    def describe(self) -> list[Metric]:
        """Nothing to pre-declare (the registry must not read Redis when registering)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector protocol: the cluster as of now."""
        yield GaugeMetricFamily("frontlas_plane_connections", "Frontiers connected to this Frontlas instance",
                                value=self._connections())
        try:
            live = self._frontiers()
        except Exception:
            yield GaugeMetricFamily("frontlas_redis_up", "Whether Redis answered this scrape's read", value=0)
            return
        yield GaugeMetricFamily("frontlas_redis_up", "Whether Redis answered this scrape's read", value=1)
        yield GaugeMetricFamily("frontlas_frontiers", "Live frontiers registered in the cluster", value=len(live))
        edges = GaugeMetricFamily("frontlas_edges", "Edges online, by the frontier holding them", labels=["frontier_id"])
        services = GaugeMetricFamily("frontlas_services", "Service connections, by frontier", labels=["frontier_id"])
        for record in live:
            edges.add_metric([record.frontier_id], record.edge_count)
            services.add_metric([record.frontier_id], record.service_count)
        yield edges
        yield services


def frontlas_registry(frontiers: Callable[[], list[_Frontier]],
                      connections: Callable[[], int]) -> tuple[CollectorRegistry, RedisStats]:
    """A fresh registry with the process, platform and GC collectors, a
    :class:`ClusterStats` over ``frontiers``/``connections``, and the Redis figures
    (registered after it, so a scrape's own failed read is counted in that scrape)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ClusterStats(frontiers, connections))
    return registry, RedisStats(registry)
