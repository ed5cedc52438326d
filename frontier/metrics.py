"""Prometheus metrics of the gateway, defined once.

The data plane increments these; the control plane serves them at ``/metrics``.
Labels are low-cardinality only: never an edge id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: direction label values
EDGE_TO_SERVICE = "edge_to_service"
SERVICE_TO_EDGE = "service_to_edge"
EDGE_TO_MQ = "edge_to_mq"

EDGES = Gauge("frontier_edges_connected", "Edges connected now")
SERVICES = Gauge("frontier_services_connected", "Service connections open now")
CALLS = Counter("frontier_calls_total", "Routed RPC calls by direction and result", ["direction", "result"])
PUBLISHES = Counter("frontier_publishes_total", "Routed acked publishes by direction and result", ["direction", "result"])
STREAMS = Counter("frontier_streams_total", "Stream opens by direction and result", ["direction", "result"])
CALL_LATENCY = Histogram("frontier_call_duration_seconds", "Routed call latency at the gateway", ["direction"])
PUBLISH_LATENCY = Histogram("frontier_publish_duration_seconds", "Routed publish latency until ack", ["direction"])
STREAM_BYTES = Counter("frontier_stream_bytes_total", "Bytes spliced through streams", ["direction"])
FRAMES_REJECTED = Counter("frontier_frames_rejected_total", "Connections closed for a protocol violation", ["reason"])
CONNECTIONS_REFUSED = Counter("frontier_connections_refused_total", "Handshakes refused", ["role", "reason"])
MQ_PRODUCE = Counter("frontier_mq_produce_total", "Messages produced to external MQs", ["broker", "result"])
