"""What the control plane does, independent of REST or gRPC.

:class:`ControlService` answers queries from the store and kicks and bans through the
gateway's :class:`~frontier.sessions.info.Kicker`, raising the project's errors
(``EdgeNotOnline``, ``InvalidArgument``, ...). The front ends translate those with
:func:`http_status` and :func:`grpc_status_name`, so both speak the same errors.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

from frontier.control.query import (
    EdgeQuery,
    EdgeRPCQuery,
    Page,
    ServiceNamesQuery,
    ServiceQuery,
    text_of,
)
from frontier.control.store import QueryStore
from frontier.sessions.bans import Ban
from frontier.sessions.info import EdgeInfo, Kicker, ServiceInfo
from frontier.wire.errors import (
    EdgeNotOnline,
    ErrorCode,
    FrontierError,
    InternalError,
    NotFound,
    ServiceNotOnline,
)

log = logging.getLogger(__name__)

#: frontier error code -> (HTTP status, gRPC status code name); anything else is 500 / INTERNAL
_STATUS: dict[int, tuple[int, str]] = {
    ErrorCode.INVALID_ARGUMENT: (400, "INVALID_ARGUMENT"),
    ErrorCode.UNAUTHORIZED: (401, "UNAUTHENTICATED"),
    ErrorCode.EDGE_NOT_ONLINE: (404, "NOT_FOUND"),
    ErrorCode.SERVICE_NOT_ONLINE: (404, "NOT_FOUND"),
    ErrorCode.TIMEOUT: (504, "DEADLINE_EXCEEDED"),
    ErrorCode.NOT_FOUND: (404, "NOT_FOUND"),
    ErrorCode.BROKER_UNAVAILABLE: (503, "UNAVAILABLE"),
}


def http_status(err: FrontierError) -> int:
    """The HTTP status a REST client gets for ``err``."""
    return _STATUS.get(err.code, (500, "INTERNAL"))[0]


def grpc_status_name(err: FrontierError) -> str:
    """The name of the ``grpc.StatusCode`` a gRPC client gets for ``err``."""
    return _STATUS.get(err.code, (500, "INTERNAL"))[1]


def create_time(created_at: float) -> int:
    """``created_at`` as the API shows it: whole unix seconds, as in Go."""
    return math.floor(created_at)


def edge_json(edge: EdgeInfo) -> dict[str, Any]:
    """The REST (JSON) form of an edge; the same fields as the proto ``Edge``."""
    return {
        "edge_id": edge.edge_id,
        "meta": text_of(edge.meta),
        "addr": text_of(edge.addr),
        "create_time": create_time(edge.created_at),
        "rpcs": [text_of(r) for r in edge.rpcs],
    }


def ban_json(ban: Ban) -> dict[str, Any]:
    """The REST (JSON) form of a ban; the same fields as the proto ``Ban``."""
    return {
        "edge_id": ban.edge_id,
        "until": round(ban.until, 3),
        "remaining": round(ban.remaining(time.time()), 3),
        "reason": ban.reason,
        "create_time": create_time(ban.created_at),
    }


def service_json(service: ServiceInfo) -> dict[str, Any]:
    """The REST (JSON) form of a service; the same fields as the proto ``Service``."""
    return {
        "service_id": service.service_id,
        "service": text_of(service.name),
        "addr": text_of(service.addr),
        "create_time": create_time(service.created_at),
        "rpcs": [text_of(r) for r in service.rpcs],
        "topics": [text_of(t) for t in service.topics],
    }


class AppsAPI(Protocol):
    """The HTTP ingress's apps as the control plane sees them (the gateway passes
    :attr:`frontier.ingress.Ingress.apps`; the control plane never imports the ingress).
    Apps are JSON-shaped dicts; ``put`` raises ``ConfigError`` naming the bad field."""

    def list(self) -> list[dict[str, Any]]: ...

    def get(self, app_id: str) -> dict[str, Any] | None: ...

    def put(self, raw: Any, app_id: str | None = None) -> dict[str, Any]: ...

    def delete(self, app_id: str) -> bool: ...


class ControlService:
    """Queries over a :class:`QueryStore`, kicks through a :class:`Kicker`, and the
    ingress's apps through an :class:`AppsAPI` (None when the ingress is off)."""

    def __init__(self, store: QueryStore, kicker: Kicker, apps: AppsAPI | None = None) -> None:
        self.store = store
        self.kicker = kicker
        self.apps = apps

    # -- ingress apps ---------------------------------------------------------------

    def _apps(self) -> AppsAPI:
        if self.apps is None:
            raise NotFound("the HTTP ingress is not enabled on this gateway (ingress.enable)")
        return self.apps

    def list_apps(self) -> list[dict[str, Any]]:
        """``ListApps``: every app, sorted by id."""
        return self._apps().list()

    def get_app(self, app_id: str) -> dict[str, Any]:
        """``GetApp``; :class:`NotFound` if there is no such app."""
        app = self._apps().get(app_id)
        if app is None:
            raise NotFound(f"no app {app_id!r}")
        return app

    def put_app(self, raw: Any, app_id: str) -> dict[str, Any]:
        """``PutApp``: create or replace; ``ConfigError`` (400) names the bad field."""
        app = self._apps().put(raw, app_id)
        log.info("control plane put app %s", app_id)
        return app

    def delete_app(self, app_id: str) -> None:
        """``DeleteApp``; :class:`NotFound` if there is no such app."""
        if not self._apps().delete(app_id):
            raise NotFound(f"no app {app_id!r}")
        log.info("control plane deleted app %s", app_id)

    def list_edges(self, query: EdgeQuery) -> Page[EdgeInfo]:
        """``ListEdges``."""
        return self.store.list_edges(query)

    def get_edge(self, edge_id: int) -> EdgeInfo:
        """``GetEdge``; :class:`EdgeNotOnline` if there is no such edge."""
        edge = self.store.get_edge(edge_id)
        if edge is None:
            raise EdgeNotOnline(f"edge {edge_id} is not online")
        return edge

    def kick_edge(self, edge_id: int, reconnect: bool = True) -> None:
        """``KickEdge``: close the edge's connection, telling it to reconnect after the
        gateway's delay (``reconnect``, Go's behaviour) or not at all;
        :class:`EdgeNotOnline` if unknown."""
        if not self._kick("edge", self.kicker.kick_edge, edge_id, reconnect):
            raise EdgeNotOnline(f"edge {edge_id} is not online")
        log.info("control plane kicked edge %d (reconnect: %s)", edge_id, reconnect)

    def ban_edge(self, edge_id: int, duration: float, reason: str = "") -> Ban:
        """``BanEdge``: refuse ``edge_id`` for ``duration`` seconds, closing it if online."""
        ban = self.kicker.ban_edge(edge_id, duration, reason)
        log.info("control plane banned edge %d for %.0fs%s", edge_id, duration, f" ({reason})" if reason else "")
        return ban

    def list_bans(self) -> list[Ban]:
        """``ListBans``: the bans in force, soonest to end first."""
        return self.kicker.list_bans()

    def lift_ban(self, edge_id: int) -> bool:
        """``LiftBan``; False if the edge had no ban."""
        lifted = self.kicker.lift_ban(edge_id)
        if lifted:
            log.info("control plane lifted the ban on edge %d", edge_id)
        return lifted

    def list_edge_rpcs(self, query: EdgeRPCQuery) -> Page[str]:
        """``ListEdgeRPCs``."""
        return self.store.list_edge_rpcs(query)

    def list_services(self, query: ServiceQuery) -> Page[ServiceInfo]:
        """``ListServices``."""
        return self.store.list_services(query)

    def get_service(self, service_id: int) -> ServiceInfo:
        """``GetService``; :class:`ServiceNotOnline` if there is no such service."""
        service = self.store.get_service(service_id)
        if service is None:
            raise ServiceNotOnline(f"service {service_id} is not online")
        return service

    def kick_service(self, service_id: int, reconnect: bool = True) -> None:
        """``KickService`` (``reconnect`` as for edges); :class:`ServiceNotOnline` if unknown."""
        if not self._kick("service", self.kicker.kick_service, service_id, reconnect):
            raise ServiceNotOnline(f"service {service_id} is not online")
        log.info("control plane kicked service %d (reconnect: %s)", service_id, reconnect)

    def list_service_rpcs(self, query: ServiceNamesQuery) -> Page[str]:
        """``ListServiceRPCs``."""
        return self.store.list_service_rpcs(query)

    def list_service_topics(self, query: ServiceNamesQuery) -> Page[str]:
        """``ListServiceTopics``."""
        return self.store.list_service_topics(query)

    @staticmethod
    def _kick(what: str, kick, ident: int, reconnect: bool) -> bool:  # type: ignore[no-untyped-def]
        try:
            return bool(kick(ident, reconnect))
        except FrontierError:
            raise
        except Exception as exc:
            log.exception("kicker failed to kick %s %d", what, ident)
            raise InternalError(f"kicking {what} {ident} failed: {exc.__class__.__name__}") from exc
