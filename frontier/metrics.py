"""Prometheus metrics of the gateway, defined once.

The data plane increments these; the control plane serves them at ``/metrics``.
Labels are low-cardinality only: never an edge id.

Per-call figures (calls, publishes, stream opens, latencies, stream bytes) are kept
by :data:`ROUTES` as plain integers on the hot path and turned into Prometheus
families only when scraped; a ``prometheus_client`` Counter or Histogram costs
several microseconds per update, a dict increment a few dozen nanoseconds.
"""

from __future__ import annotations

from typing import ClassVar, Final, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

#: direction label values
EDGE_TO_SERVICE = "edge_to_service"
SERVICE_TO_EDGE = "service_to_edge"
EDGE_TO_MQ = "edge_to_mq"

EDGES = Gauge("frontier_edges_connected", "Edges connected now")
SERVICES = Gauge("frontier_services_connected", "Service connections open now")
FRAMES_REJECTED = Counter("frontier_frames_rejected_total", "Connections closed for a protocol violation", ["reason"])
CONNECTIONS_REFUSED = Counter("frontier_connections_refused_total", "Handshakes refused", ["role", "reason"])
RATE_LIMITED = Counter("frontier_rate_limited_total",
                       "Reader turns paused (throttled) or connections closed for going over their frame or byte rate",
                       ["role", "action"])
RELAY_REFUSED = Counter("frontier_relay_refused_total",
                        "Frames not relayed because they would not fit the frame limit once re-encoded", ["kind"])
MQ_PRODUCE = Counter("frontier_mq_produce_total", "Messages produced to external MQs", ["broker", "result"])

CALL, PUBLISH, STREAM = "call", "publish", "stream"
#: the result label of a success
OK_RESULT: Final = "ok"

# the HTTP ingress, per app (``app`` is an app id, or "-" for a request no app matched;
# ``code`` the HTTP status sent); a request costs far more than these updates
INGRESS_REQUESTS = Counter("frontier_ingress_requests_total", "HTTP requests answered by the ingress", ["app", "code"])
INGRESS_DURATION = Histogram("frontier_ingress_request_duration_seconds",
                             "Time from a request's head to the end of its answer", ["app"],
                             buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
INGRESS_BYTES = Counter("frontier_ingress_bytes_total", "Body bytes through the ingress; in: from clients, out: to clients",
                        ["app", "direction"])
INGRESS_WEBSOCKETS = Gauge("frontier_ingress_websockets_open", "WebSocket (Upgrade) connections open through the ingress", ["app"])
INGRESS_CONNECTIONS = Gauge("frontier_ingress_connections", "HTTP client connections open on the ingress")
INGRESS_REFUSED = Counter("frontier_ingress_connections_refused_total", "Client connections refused by the ingress", ["reason"])


#: latency bucket upper bounds of routed calls and publishes, seconds
LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class Route:
    """What finished of one kind (calls, publishes or stream opens) in one direction:
    counts by result, and the latency histogram of the successful ones."""

    def __init__(self) -> None:
        self.succeeded = 0  #: results ``ok``: one native increment on the hot path
        self.failed: dict[str, int] = {}  #: the other results, by name
        #: observations per bucket of :data:`LATENCY_BUCKETS` (the last: above them all)
        self.buckets: list[int] = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0  #: the sum of the latencies observed

    @property
    def results(self) -> dict[str, int]:
        """Counts by result name (``ok``, ``timeout``, ...), of those that happened."""
        return {OK_RESULT: self.succeeded, **self.failed} if self.succeeded else dict(self.failed)

    def ok(self, seconds: float | None = None) -> None:
        """One succeeded, after ``seconds`` when timed."""
        self.succeeded += 1
        if seconds is not None:
            i = 0
            last = len(LATENCY_BUCKETS)
            while i < last and LATENCY_BUCKETS[i] < seconds:  # a few steps: latencies are mostly small
                i += 1
            self.buckets[i] += 1
            self.seconds += seconds

    def count(self, result: str, seconds: float | None = None) -> None:
        """One finished with ``result``; ``seconds`` for a successful one."""
        if result == OK_RESULT:
            self.ok(seconds)
        else:
            failed = self.failed
            failed[result] = failed.get(result, 0) + 1


class RouteStats:
    """Counts and latency histograms of routed calls, publishes and stream opens."""

    _FAMILIES: ClassVar[dict[str, tuple[str, str]]] = {
        CALL: ("frontier_calls", "Routed RPC calls by direction and result"),
        PUBLISH: ("frontier_publishes", "Routed acked publishes by direction and result"),
        STREAM: ("frontier_streams", "Stream opens by direction and result"),
    }
    _LATENCY: ClassVar[dict[str, tuple[str, str]]] = {
        CALL: ("frontier_call_duration_seconds", "Routed call latency at the gateway"),
        PUBLISH: ("frontier_publish_duration_seconds", "Routed publish latency until ack"),
    }

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.stream_bytes: dict[str, int] = {}

    def route(self, kind: str, direction: str) -> Route:
        """The counters of ``kind`` in ``direction`` (kept: a hot path may hold on to them)."""
        route = self.routes.get((kind, direction))
        if route is None:
            route = self.routes[(kind, direction)] = Route()
        return route

    def count(self, kind: str, direction: str, result: str, seconds: float | None = None) -> None:
        """One finished call/publish/stream open; ``seconds`` for successful ones."""
        self.route(kind, direction).count(result, seconds)

    def add_stream_bytes(self, direction: str, n: int) -> None:
        """Bytes spliced through a stream in ``direction``."""
        self.stream_bytes[direction] = self.stream_bytes.get(direction, 0) + n

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector protocol: the families as of now."""
        routes = list(self.routes.items())
        for kind, (name, doc) in self._FAMILIES.items():
            family = CounterMetricFamily(name, doc, labels=["direction", "result"])
            for (k, direction), route in routes:
                if k == kind:
                    for result, n in list(route.results.items()):
                        family.add_metric([direction, result], n)
            yield family
        for kind, (name, doc) in self._LATENCY.items():
            histograms = HistogramMetricFamily(name, doc, labels=["direction"])
            for (k, direction), route in routes:
                if k == kind and any(route.buckets):
                    cumulative = 0
                    buckets = []
                    for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), list(route.buckets)):
                        cumulative += count
                        buckets.append((bound, cumulative))
                    histograms.add_metric([direction], buckets, route.seconds)
            yield histograms
        family = CounterMetricFamily("frontier_stream_bytes", "Bytes spliced through streams", labels=["direction"])
        for direction, n in list(self.stream_bytes.items()):
            family.add_metric([direction], n)
        yield family


ROUTES: Final = RouteStats()
REGISTRY.register(ROUTES)
