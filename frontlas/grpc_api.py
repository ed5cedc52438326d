"""The gRPC front end of the cluster API: ``controlplane.ClusterService`` and Go's
``controlplane.Health``, over the same :class:`~frontlas.api.ClusterAPI` as REST.

Project errors become statuses (NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE when Redis
is down); anything unexpected is logged and answered INTERNAL.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable, Iterator, Optional

import grpc

from frontier.wire.errors import FrontierError

from .api import ClusterAPI, grpc_status_name
from .proto import cluster_pb2 as pb
from .proto import cluster_pb2_grpc as pb_grpc
from .store import EdgeRecord, FrontierRecord, ServiceRecord

log = logging.getLogger("frontlas.grpc")

#: full name of the cluster service, as Go clients know it
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ClusterService"].full_name
#: full name of Go's Frontlas health service
HEALTH_NAME: str = pb.DESCRIPTOR.services_by_name["Health"].full_name


def frontier_pb(f: Optional[FrontierRecord]) -> pb.Frontier:
    """The proto form of a frontier (empty for None)."""
    if f is None:
        return pb.Frontier()
    return pb.Frontier(frontier_id=f.frontier_id, advertised_sb_addr=f.advertised_sb_addr,
                       advertised_eb_addr=f.advertised_eb_addr, edge_count=f.edge_count,
                       service_count=f.service_count, update_time=f.update_time)


def edge_pb(e: Optional[EdgeRecord]) -> pb.EdgeRecord:
    """The proto form of an edge (empty for None)."""
    if e is None:
        return pb.EdgeRecord()
    return pb.EdgeRecord(edge_id=e.edge_id, addr=e.addr, update_time=e.update_time, frontier_id=e.frontier_id)


def service_pb(s: Optional[ServiceRecord]) -> pb.ServiceRecord:
    """The proto form of a service (empty for None)."""
    if s is None:
        return pb.ServiceRecord()
    return pb.ServiceRecord(service=s.service, addr=s.addr, update_time=s.update_time, frontier_id=s.frontier_id,
                            service_id=s.service_id, rpcs=list(s.rpcs), topics=list(s.topics))


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """Project errors to gRPC statuses; anything else is logged and INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except FrontierError as err:
            context.abort(getattr(grpc.StatusCode, grpc_status_name(err)), err.message)
        except Exception as err:
            log.exception("gRPC %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error ({err.__class__.__name__})")

    return wrapper


class ClusterServicer(pb_grpc.ClusterServiceServicer):
    """``controlplane.ClusterService`` over a :class:`ClusterAPI`."""

    def __init__(self, api: ClusterAPI) -> None:
        self._api = api

    @_rpc
    def GetFrontierByEdge(self, request: pb.GetFrontierByEdgeIDRequest, context: Any) -> pb.GetFrontierByEdgeIDResponse:
        return pb.GetFrontierByEdgeIDResponse(frontier=frontier_pb(self._api.get_frontier_by_edge(request.edge_id)))

    @_rpc
    def ListFrontiers(self, request: pb.ListFrontiersRequest, context: Any) -> pb.ListFrontiersResponse:
        page = self._api.list_frontiers(_opt(request, "cursor"), _opt(request, "count"),
                                        list(request.edge_ids), list(request.frontier_ids))
        return pb.ListFrontiersResponse(cursor=page.cursor, frontiers=[frontier_pb(f) for f in page.items])

    @_rpc
    def ListEdges(self, request: pb.ListClusterEdgesRequest, context: Any) -> pb.ListClusterEdgesResponse:
        page = self._api.list_edges(_opt(request, "cursor"), _opt(request, "count"), list(request.edge_ids))
        return pb.ListClusterEdgesResponse(cursor=page.cursor, edges=[edge_pb(e) for e in page.items])

    @_rpc
    def GetEdgeByID(self, request: pb.GetEdgeByIDRequest, context: Any) -> pb.GetEdgeByIDResponse:
        return pb.GetEdgeByIDResponse(edge=edge_pb(self._api.get_edge(request.edge_id)))

    @_rpc
    def GetEdgesCount(self, request: pb.GetEdgesCountRequest, context: Any) -> pb.GetEdgesCountResponse:
        return pb.GetEdgesCountResponse(count=self._api.edges_count())

    @_rpc
    def ListServices(self, request: pb.ListClusterServicesRequest, context: Any) -> pb.ListClusterServicesResponse:
        page = self._api.list_services(_opt(request, "cursor"), _opt(request, "count"), list(request.service_ids))
        return pb.ListClusterServicesResponse(cursor=page.cursor, services=[service_pb(s) for s in page.items])

    @_rpc
    def GetServiceByID(self, request: pb.GetServiceByIDRequest, context: Any) -> pb.GetServiceByIDResponse:
        service = self._api.get_service(request.service_id, _opt(request, "frontier_id"))
        return pb.GetServiceByIDResponse(service=service_pb(service))

    @_rpc
    def GetServicesCount(self, request: pb.GetServicesCountRequest, context: Any) -> pb.GetServicesCountResponse:
        return pb.GetServicesCountResponse(count=self._api.services_count())


class GoHealthServicer(pb_grpc.HealthServicer):
    """Go Frontlas' ``controlplane.Health``: SERVING while ``ready()``."""

    #: seconds between readiness polls of a ``Watch`` stream
    watch_interval = 1.0

    def __init__(self, ready: Callable[[], bool]) -> None:
        self._ready = ready

    def _status(self) -> int:
        try:
            ok = bool(self._ready())
        except Exception:
            log.exception("readiness check failed")
            ok = False
        return pb.HealthCheckResponse.SERVING if ok else pb.HealthCheckResponse.NOT_SERVING

    def Check(self, request: pb.HealthCheckRequest, context: Any) -> pb.HealthCheckResponse:
        return pb.HealthCheckResponse(status=self._status())

    def Watch(self, request: pb.HealthCheckRequest, context: Any) -> Iterator[pb.HealthCheckResponse]:
        last = None
        while context.is_active():
            status = self._status()
            if status != last:
                last = status
                yield pb.HealthCheckResponse(status=status)
            time.sleep(self.watch_interval)
