"""The per-call counters behind /metrics (``frontier.metrics.RouteStats``)."""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from frontier.metrics import LATENCY_BUCKETS, Route, RouteStats


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=20))
def test_latencies_land_in_the_bucket_prometheus_means(latencies: list[float]) -> None:
    """A latency counts in the first bucket whose upper bound is not below it."""
    route = Route()
    expected = [0] * (len(LATENCY_BUCKETS) + 1)
    for seconds in latencies:
        route.count("ok", seconds)
        expected[bisect_left(LATENCY_BUCKETS, seconds)] += 1
    assert route.buckets == expected
    assert route.results == ({"ok": len(latencies)} if latencies else {})
    assert abs(route.seconds - sum(latencies)) < 1e-6


def test_exposition_counts_results_and_only_observed_histograms() -> None:
    stats = RouteStats()
    registry = CollectorRegistry()
    registry.register(stats)
    stats.count("call", "edge_to_service", "ok", 0.003)
    stats.count("call", "edge_to_service", "ok", 0.0005)
    stats.count("call", "edge_to_service", "timeout")
    stats.count("publish", "service_to_edge", "edge_not_online")
    stats.add_stream_bytes("edge_to_service", 10)
    text = generate_latest(registry).decode()
    assert 'frontier_calls_total{direction="edge_to_service",result="ok"} 2.0' in text
    assert 'frontier_calls_total{direction="edge_to_service",result="timeout"} 1.0' in text
    assert 'frontier_publishes_total{direction="service_to_edge",result="edge_not_online"} 1.0' in text
    assert 'frontier_call_duration_seconds_bucket{direction="edge_to_service",le="0.0005"} 1.0' in text
    assert 'frontier_call_duration_seconds_bucket{direction="edge_to_service",le="0.005"} 2.0' in text
    assert 'frontier_call_duration_seconds_count{direction="edge_to_service"} 2.0' in text
    assert "frontier_publish_duration_seconds_bucket" not in text  # no publish succeeded
    assert 'frontier_stream_bytes_total{direction="edge_to_service"} 10.0' in text
