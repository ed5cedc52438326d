"""The cluster API's one listening port (40011): REST and gRPC together.

The same arrangement as frontier's control plane (:class:`frontier.control.server.OnePortServer`,
which this subclasses): a connection that opens with the HTTP/2
preface is spliced to a private gRPC server, anything else is served by the Flask
app. gRPC serves ``controlplane.ClusterService``, Go's ``controlplane.Health``, the
standard ``grpc.health.v1.Health`` and reflection.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
from prometheus_client import CollectorRegistry

from frontier.control.grpc_api import ReadinessHealth
from frontier.control.server import OnePortServer

from .api import ClusterAPI
from .grpc_api import HEALTH_NAME, SERVICE_NAME, ClusterServicer, GoHealthServicer
from .proto import cluster_pb2_grpc as pb_grpc
from .rest import create_app


class _ReadinessHealth(ReadinessHealth):
    """``grpc.health.v1`` for the whole server and the cluster service."""

    SERVICES = ("", SERVICE_NAME)


class ClusterControlPlane(OnePortServer):
    """REST + gRPC cluster API on one port; ``ready`` drives the health answers,
    ``/metrics`` serves ``registry``."""

    title = "cluster API"
    prefix = "frontlas-cp"
    access_logger, error_logger = "frontlas.access", "frontlas.http"
    health_class = _ReadinessHealth

    def __init__(self, *, listen: str, api: ClusterAPI, ready: Callable[[], bool],
                 registry: CollectorRegistry, limits: Any = None) -> None:
        super().__init__(listen=listen, ready=ready, limits=limits)
        self._api = api
        self._registry = registry

    def _app(self) -> Callable:
        return create_app(self._api, ready=self._ready, registry=self._registry)

    def _add_services(self, server: grpc.Server) -> tuple[str, ...]:
        pb_grpc.add_ClusterServiceServicer_to_server(ClusterServicer(self._api), server)
        pb_grpc.add_HealthServicer_to_server(GoHealthServicer(self._ready), server)
        return (SERVICE_NAME, HEALTH_NAME)
