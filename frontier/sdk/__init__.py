"""The blocking frontier SDK: ``Service`` for backends, ``Edge`` for devices/agents.

Uses only ``socket`` and ``threading`` (never gevent): threads in a plain program,
greenlets by themselves in a gevent-patched one. Example::

    from frontier.sdk import Service, Edge

    svc = Service("127.0.0.1:30011", name="echo-svc")
    svc.register("echo", lambda req: req.data)
    edge = Edge("127.0.0.1:30012", meta=b"device-1")
    assert edge.call("echo", b"hi") == b"hi"

In a cluster, ``ClusterService`` and ``ClusterEdge`` take a Frontlas address instead
(see :mod:`frontier.sdk.cluster`).
"""

from .cluster import ClusterEdge, ClusterService
from .edge import Edge
from .errors import (
    BackendUnreachable, Banned, BrokerUnavailable, BufferFull, Cancelled, ConnectionClosed, DuplicateEdge, EdgeNotOnline,
    FrontierError, GoingAway, InvalidArgument, Kicked, LimitExceeded, NotExposed, NotFrontier, NotOnline,
    PayloadTooLarge, ProtocolError, RateLimited, Refused, RemoteError, RpcNotOnline, ServiceNotOnline, StreamRefused,
    StreamReset, Timeout, TopicNotOnline, Unauthorized,
)
from .message import Message, Request
from .service import Service
from .stream import Stream

__all__ = [
    "Service", "Edge", "Stream", "Message", "Request", "ClusterService", "ClusterEdge",
    "FrontierError", "NotOnline", "EdgeNotOnline", "ServiceNotOnline", "RpcNotOnline", "TopicNotOnline",
    "Timeout", "BufferFull", "Cancelled", "ConnectionClosed", "GoingAway", "Kicked", "DuplicateEdge", "Banned",
    "StreamReset", "StreamRefused", "RemoteError", "BrokerUnavailable", "Refused", "Unauthorized", "InvalidArgument",
    "ProtocolError", "NotFrontier", "PayloadTooLarge", "RateLimited", "LimitExceeded", "NotExposed", "BackendUnreachable",
]
