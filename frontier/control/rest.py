"""The REST front end: a Flask app with the Go frontier's ``/v1`` paths.

Every answer is JSON, errors included: ``{"code": <http status>, "reason":
<ERROR_NAME>, "message": <text>}``. Bad input is 400, an unknown id 404, a missing
or wrong token 401; nothing ever answers with a stack trace. ``/healthz``,
``/readyz`` and ``/metrics`` need no token.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Callable

from flask import Flask, Response, jsonify, request
from prometheus_client import REGISTRY, CollectorRegistry
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

import frontier.metrics  # noqa: F401  (registers the gateway metrics served at /metrics)
from frontier.control import params as P
from frontier.control.auth import EXEMPT_PATHS, BearerTokens
from frontier.control.openapi import openapi_document
from frontier.control.probes import PATHS as PROBE_PATHS, probe
from frontier.control.query import (
    UINT64_MAX,
    make_edge_query,
    make_edge_rpc_query,
    make_service_names_query,
    make_service_query,
)
from frontier.control.service import ControlService, ban_json, edge_json, http_status, service_json
from frontier.wire.errors import ErrorCode, FrontierError, InvalidArgument

log = logging.getLogger(__name__)


def json_error(status: int, reason: str, message: str) -> Response:
    """An error response: ``{"code": status, "reason": ..., "message": ...}``."""
    resp = jsonify({"code": status, "reason": reason, "message": message})
    resp.status_code = status
    return resp


def _args(spec: tuple[P.Param, ...]) -> dict[str, Any]:
    return P.parse_params(request.args.to_dict(flat=False), spec)


def _id(name: str, raw: str) -> int:
    value = P.parse_int(name, raw)
    if not 0 <= value <= UINT64_MAX:
        raise InvalidArgument(f"{name}: {value} is out of range [0, {UINT64_MAX}]")
    return value


class _IdSegment(BaseConverter):
    """An item's id segment: anything but the names of the sibling list routes, so
    ``/v1/edges/rpcs`` is only the list (its ``Allow`` lists no ``DELETE``); a
    malformed id still reaches the view and gets a JSON 400."""

    regex = r"(?!(?:rpcs|topics)$)[^/]+"


def _kick_args() -> dict[str, bool]:
    reconnect = _args(P.KICK).get("reconnect")
    return {"reconnect": True if reconnect is None else bool(reconnect)}


def _no_args() -> None:
    if request.args:
        raise InvalidArgument(f"unknown query parameter {next(iter(request.args))!r}; this call takes none")


def install_json_errors(app: Flask, status_of: Callable[[FrontierError], int], logger: logging.Logger, what: str) -> None:
    """Answer every error as JSON ``{code, reason, message}``: a ``FrontierError`` with
    ``status_of(err)``, an HTTP error with its status (a 405 keeps its ``Allow``), and
    anything else with 500, its details only in the log."""

    @app.errorhandler(FrontierError)
    def _frontier_error(err: FrontierError) -> Response:
        return json_error(status_of(err), ErrorCode(err.code).name, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        code = err.code or 500
        reason = (err.name or "error").upper().replace(" ", "_")
        resp = json_error(code, reason, err.description or err.name)
        for name, value in err.get_headers():
            if name.lower() == "allow":  # 405 says which methods exist
                resp.headers[name] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logger.exception("%s %s %s failed", what, request.method, request.path)
        return json_error(500, ErrorCode.INTERNAL.name, f"internal error ({err.__class__.__name__})")


def install_probes(
    app: Flask,
    ready: Callable[[], bool],
    *,
    registry: CollectorRegistry = REGISTRY,
    not_ready: str = "not ready",
    logger: logging.Logger = log,
) -> None:
    """Add the probe endpoints, which need no token: ``/healthz``, ``/readyz`` and
    ``/metrics``, answered by :func:`frontier.control.probes.probe` (the
    observability listener serves the same answers without Flask)."""

    def serve(path: str) -> Response:
        status, content_type, body = probe(path, ready, registry=registry, not_ready=not_ready, logger=logger)
        return Response(body, status=status, content_type=content_type)

    for path in PROBE_PATHS:
        app.add_url_rule(path, f"probe{path.replace('/', '_')}", partial(serve, path), methods=["GET"])


def create_app(
    service: ControlService,
    *,
    tokens: BearerTokens = BearerTokens(),
    ready: Callable[[], bool] = lambda: True,
) -> Flask:
    """The WSGI app of the control plane's REST API."""
    app = Flask("frontier.control")
    app.url_map.converters["id"] = _IdSegment
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def _authenticate() -> Response | None:
        if request.path in EXEMPT_PATHS or tokens.check(request.headers.get("Authorization")):
            return None
        resp = json_error(401, ErrorCode.UNAUTHORIZED.name, "missing or invalid bearer token")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="frontier"'
        return resp

    install_json_errors(app, http_status, log, "control plane REST")

    # -- edges --------------------------------------------------------------------

    @app.get("/v1/edges")
    def list_edges() -> Any:
        page = service.list_edges(make_edge_query(**_args(P.LIST_EDGES)))
        return {"edges": [edge_json(e) for e in page.items], "count": page.count}

    @app.get("/v1/edges/rpcs")
    def list_edge_rpcs() -> Any:
        page = service.list_edge_rpcs(make_edge_rpc_query(**_args(P.LIST_EDGE_RPCS)))
        return {"rpcs": list(page.items), "count": page.count}

    @app.get("/v1/edges/<id:edge_id>")
    def get_edge(edge_id: str) -> Any:
        _no_args()
        return edge_json(service.get_edge(_id("edge_id", edge_id)))

    @app.delete("/v1/edges/<id:edge_id>")
    def kick_edge(edge_id: str) -> Any:
        service.kick_edge(_id("edge_id", edge_id), **_kick_args())
        return {}

    # -- services -----------------------------------------------------------------

    @app.get("/v1/services")
    def list_services() -> Any:
        page = service.list_services(make_service_query(**_args(P.LIST_SERVICES)))
        return {"services": [service_json(s) for s in page.items], "count": page.count}

    @app.get("/v1/services/rpcs")
    def list_service_rpcs() -> Any:
        query = make_service_names_query(kind="rpc", **_args(P.LIST_SERVICE_RPCS))
        page = service.list_service_rpcs(query)
        return {"rpcs": list(page.items), "count": page.count}

    @app.get("/v1/services/topics")
    def list_service_topics() -> Any:
        query = make_service_names_query(kind="topic", **_args(P.LIST_SERVICE_TOPICS))
        page = service.list_service_topics(query)
        return {"topics": list(page.items), "count": page.count}

    @app.get("/v1/services/<id:service_id>")
    def get_service(service_id: str) -> Any:
        _no_args()
        return service_json(service.get_service(_id("service_id", service_id)))

    @app.delete("/v1/services/<id:service_id>")
    def kick_service(service_id: str) -> Any:
        service.kick_service(_id("service_id", service_id), **_kick_args())
        return {}

    # -- bans ---------------------------------------------------------------------

    @app.get("/v1/bans")
    def list_bans() -> Any:
        _no_args()
        bans = service.list_bans()
        return {"bans": [ban_json(b) for b in bans], "count": len(bans)}

    @app.put("/v1/bans/<edge_id>")
    def ban_edge(edge_id: str) -> Any:
        args = _args(P.BAN_EDGE)
        if args.get("duration") is None:
            raise InvalidArgument("duration: required (seconds)")
        return ban_json(service.ban_edge(_id("edge_id", edge_id), float(args["duration"]), str(args.get("reason") or "")))

    @app.delete("/v1/bans/<edge_id>")
    def lift_ban(edge_id: str) -> Any:
        _no_args()
        return {"lifted": service.lift_ban(_id("edge_id", edge_id))}
    # -- ingress apps -------------------------------------------------------------

    @app.get("/v1/apps")
    def list_apps() -> Any:
        _no_args()
        apps = service.list_apps()
        return {"apps": apps, "count": len(apps)}

    @app.get("/v1/apps/<id>")
    def get_app(id: str) -> Any:  # noqa: A002  (the path parameter's documented name)
        _no_args()
        return service.get_app(id)

    @app.put("/v1/apps/<id>")
    def put_app(id: str) -> Any:  # noqa: A002
        _no_args()
        body = request.get_json(silent=True)
        if body is None:
            raise InvalidArgument("the body must be the app as a JSON object (Content-Type: application/json)")
        return service.put_app(body, id)

    @app.delete("/v1/apps/<id>")
    def delete_app(id: str) -> Any:  # noqa: A002
        _no_args()
        service.delete_app(id)
        return {}

    # -- operations ---------------------------------------------------------------

    install_probes(app, ready, logger=log)

    @app.get("/openapi.json")
    def openapi() -> Any:
        return openapi_document(auth=tokens.enabled)

    return app

