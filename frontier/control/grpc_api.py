"""The gRPC front end: ``controlplane.ControlPlane``, bearer auth, health, reflection.

Requests are turned into the same checked queries as REST; project errors map to
status codes (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED, INTERNAL) with the
error's message as details. This module builds the servicers; :mod:`server`
owns the ``grpc.Server``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2

from frontier.control.auth import EXEMPT_GRPC_SERVICES, BearerTokens
from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from frontier.control.query import (
    make_edge_query,
    make_edge_rpc_query,
    make_service_names_query,
    make_service_query,
    text_of,
)
from frontier.control.service import ControlService, ban_json, create_time, grpc_status_name
from frontier.sessions.info import EdgeInfo, ServiceInfo
from frontier.wire.errors import FrontierError

log = logging.getLogger(__name__)

#: full name of the control-plane service, as Go clients know it
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ControlPlane"].full_name

_INT32_MAX = 2**31 - 1


def _reconnect(request: Any) -> bool:
    """A kick's ``reconnect``: true unless explicitly false (unset: Go's behaviour)."""
    return _opt(request, "reconnect") is not False


def _opt(msg: Any, field: str) -> Any:
    return getattr(msg, field) if msg.HasField(field) else None


def _window(msg: Any) -> dict[str, Any]:
    return {
        "page": msg.page,
        "page_size": msg.page_size,
        "start_time": _opt(msg, "start_time"),
        "end_time": _opt(msg, "end_time"),
        "order": _opt(msg, "order"),
    }


def edge_pb(edge: EdgeInfo) -> pb.Edge:
    """The proto form of an edge."""
    return pb.Edge(
        edge_id=edge.edge_id,
        meta=text_of(edge.meta),
        addr=text_of(edge.addr),
        create_time=create_time(edge.created_at),
        rpcs=[text_of(r) for r in edge.rpcs],
    )


def service_pb(service: ServiceInfo) -> pb.Service:
    """The proto form of a service."""
    return pb.Service(
        service_id=service.service_id,
        service=text_of(service.name),
        addr=text_of(service.addr),
        create_time=create_time(service.created_at),
        rpcs=[text_of(r) for r in service.rpcs],
        topics=[text_of(t) for t in service.topics],
    )


def app_pb(app: dict[str, Any]) -> pb.App:
    """The proto form of an app (its JSON dict)."""
    return json_format.ParseDict(app, pb.App())


def app_dict(message: pb.App) -> dict[str, Any]:
    """An app message as the JSON dict the ingress validates (64-bit ids as numbers)."""
    raw = json_format.MessageToDict(message, preserving_proto_field_name=True)
    opts = raw.get("backend", {}).get("edge_http_opts")
    if opts is not None and isinstance(opts.get("edge_id"), str):
        opts["edge_id"] = int(opts["edge_id"])
    return raw


def _count(n: int) -> int:
    return min(n, _INT32_MAX)


def _rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn project errors into gRPC statuses; log and hide anything unexpected."""

    @functools.wraps(method)
    def wrapper(self: "ControlPlaneServicer", request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except FrontierError as err:
            context.abort(getattr(grpc.StatusCode, grpc_status_name(err)), err.message)
        except Exception as err:
            log.exception("control plane gRPC %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error ({err.__class__.__name__})")

    return wrapper


class ControlPlaneServicer(pb_grpc.ControlPlaneServicer):
    """``controlplane.ControlPlane`` over a :class:`ControlService`."""

    def __init__(self, service: ControlService) -> None:
        self._service = service

    @_rpc
    def ListEdges(self, request: pb.ListEdgesRequest, context: grpc.ServicerContext) -> pb.ListEdgesResponse:
        query = make_edge_query(
            meta=_opt(request, "meta"),
            addr=_opt(request, "addr"),
            rpc=_opt(request, "rpc"),
            edge_id=_opt(request, "edge_id"),
            **_window(request),
        )
        page = self._service.list_edges(query)
        return pb.ListEdgesResponse(edges=[edge_pb(e) for e in page.items], count=_count(page.count))

    @_rpc
    def GetEdge(self, request: pb.GetEdgeRequest, context: grpc.ServicerContext) -> pb.Edge:
        return edge_pb(self._service.get_edge(request.edge_id))

    @_rpc
    def KickEdge(self, request: pb.KickEdgeRequest, context: grpc.ServicerContext) -> pb.KickEdgeResponse:
        self._service.kick_edge(request.edge_id, _reconnect(request))
        return pb.KickEdgeResponse()

    @_rpc
    def ListEdgeRPCs(self, request: pb.ListEdgeRPCsRequest, context: grpc.ServicerContext) -> pb.ListEdgeRPCsResponse:
        query = make_edge_rpc_query(meta=_opt(request, "meta"), edge_id=_opt(request, "edge_id"), **_window(request))
        page = self._service.list_edge_rpcs(query)
        return pb.ListEdgeRPCsResponse(rpcs=page.items, count=_count(page.count))

    @_rpc
    def ListServices(self, request: pb.ListServicesRequest, context: grpc.ServicerContext) -> pb.ListServicesResponse:
        query = make_service_query(
            service=_opt(request, "service"),
            addr=_opt(request, "addr"),
            rpc=_opt(request, "rpc"),
            topic=_opt(request, "topic"),
            service_id=_opt(request, "service_id"),
            **_window(request),
        )
        page = self._service.list_services(query)
        return pb.ListServicesResponse(services=[service_pb(s) for s in page.items], count=_count(page.count))

    @_rpc
    def GetService(self, request: pb.GetServiceRequest, context: grpc.ServicerContext) -> pb.Service:
        return service_pb(self._service.get_service(request.service_id))

    @_rpc
    def KickService(self, request: pb.KickServiceRequest, context: grpc.ServicerContext) -> pb.KickServiceResponse:
        self._service.kick_service(request.service_id, _reconnect(request))
        return pb.KickServiceResponse()

    @_rpc
    def BanEdge(self, request: pb.BanEdgeRequest, context: grpc.ServicerContext) -> pb.Ban:
        return pb.Ban(**ban_json(self._service.ban_edge(request.edge_id, request.duration, request.reason)))

    @_rpc
    def ListBans(self, request: pb.ListBansRequest, context: grpc.ServicerContext) -> pb.ListBansResponse:
        bans = self._service.list_bans()
        return pb.ListBansResponse(bans=[pb.Ban(**ban_json(b)) for b in bans], count=len(bans))

    @_rpc
    def LiftBan(self, request: pb.LiftBanRequest, context: grpc.ServicerContext) -> pb.LiftBanResponse:
        return pb.LiftBanResponse(lifted=self._service.lift_ban(request.edge_id))

    @_rpc
    def ListServiceRPCs(
        self, request: pb.ListServiceRPCsRequest, context: grpc.ServicerContext
    ) -> pb.ListServiceRPCsResponse:
        query = make_service_names_query(
            kind="rpc", service=_opt(request, "service"), service_id=_opt(request, "service_id"), **_window(request)
        )
        page = self._service.list_service_rpcs(query)
        return pb.ListServiceRPCsResponse(rpcs=page.items, count=_count(page.count))

    @_rpc
    def ListServiceTopics(
        self, request: pb.ListServiceTopicsRequest, context: grpc.ServicerContext
    ) -> pb.ListServiceTopicsResponse:
        query = make_service_names_query(
            kind="topic", service=_opt(request, "service"), service_id=_opt(request, "service_id"), **_window(request)
        )
        page = self._service.list_service_topics(query)
        return pb.ListServiceTopicsResponse(topics=page.items, count=_count(page.count))


    @_rpc
    def ListApps(self, request: pb.ListAppsRequest, context: grpc.ServicerContext) -> pb.ListAppsResponse:
        apps = self._service.list_apps()
        return pb.ListAppsResponse(apps=[app_pb(a) for a in apps], count=_count(len(apps)))

    @_rpc
    def GetApp(self, request: pb.GetAppRequest, context: grpc.ServicerContext) -> pb.App:
        return app_pb(self._service.get_app(request.id))

    @_rpc
    def PutApp(self, request: pb.App, context: grpc.ServicerContext) -> pb.App:
        return app_pb(self._service.put_app(app_dict(request), request.id))

    @_rpc
    def DeleteApp(self, request: pb.DeleteAppRequest, context: grpc.ServicerContext) -> pb.DeleteAppResponse:
        self._service.delete_app(request.id)
        return pb.DeleteAppResponse()


def _deny(context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _denied_like(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that refuses with UNAUTHENTICATED."""
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(lambda it, ctx: _deny(ctx), **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(lambda it, ctx: _deny(ctx), **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(lambda req, ctx: _deny(ctx), **kw)
    return grpc.unary_unary_rpc_method_handler(lambda req, ctx: _deny(ctx), **kw)


class BearerAuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` metadata (health is exempt)."""

    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Optional[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Optional[grpc.RpcMethodHandler]:
        handler = continuation(handler_call_details)
        if handler is None or not self._tokens.enabled:
            return handler
        service = handler_call_details.method.lstrip("/").rpartition("/")[0]
        if service in EXEMPT_GRPC_SERVICES:
            return handler
        auth = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                auth = value if isinstance(value, str) else value.decode("latin-1")
                break
        return handler if self._tokens.check(auth) else _denied_like(handler)


class ReadinessHealth(health.HealthServicer):
    """The standard health service, SERVING only while ``ready()`` is true.

    ``Check`` asks ``ready()`` on every call; ``Watch`` streams follow
    :meth:`refresh`, which the server calls periodically.
    """

    #: services whose status this servicer reports ("" is the whole server)
    SERVICES = ("", SERVICE_NAME)

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready
        self._serving: Optional[bool] = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read ``ready()`` and publish a change to watchers."""
        try:
            serving = bool(self._ready())
        except Exception:
            log.exception("readiness check failed")
            serving = False
        if serving != self._serving:
            self._serving = serving
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in self.SERVICES:
                self.set(name, status)

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.refresh()
        return super().Check(request, context)
