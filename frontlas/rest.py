"""The REST front end of the cluster API: a Flask app with the Go Frontlas paths.

Query parameters are the proto field names (``edge_id``, ``cursor``, ``count``);
repeated ones (``edge_ids``) are given several times or comma-separated. Every
answer is JSON, errors included: ``{"code": <http status>, "reason":
<ERROR_NAME>, "message": <text>}``: 400 bad input, 404 unknown edge or service,
503 Redis unavailable. ``/cluster/v1/health`` answers 200 or 417 as in Go;
``/healthz`` (process up), ``/readyz`` (Redis answers and the frontier plane
listens) and ``/metrics`` (:mod:`frontlas.metrics`) are ours.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from flask import Flask, jsonify, request
from prometheus_client import CollectorRegistry

from frontier.control.params import parse_int
from frontier.control.rest import install_json_errors, install_probes
from frontier.wire.errors import InvalidArgument

from .api import ClusterAPI, edge_json, frontier_json, http_status, service_json

log = logging.getLogger("frontlas.rest")

#: what ``/readyz`` answers with its 503
NOT_READY = "Redis does not answer or the frontier plane is not listening"

_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1


class _Args:
    """The query string of one request, checked against the names a call takes."""

    def __init__(self, *names: str) -> None:
        args = request.args.to_dict(flat=False)
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise InvalidArgument(f"unknown query parameter {unknown[0]!r}; this call takes: {', '.join(names) or 'none'}")
        self._args = args

    def _one(self, name: str) -> Optional[str]:
        values = self._args.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidArgument(f"{name}: given {len(values)} times, expected once")
        return values[0] or None

    def uint(self, name: str, top: int = _UINT64_MAX, required: bool = False) -> Optional[int]:
        raw = self._one(name)
        if raw is None:
            if required:
                raise InvalidArgument(f"{name}: required")
            return None
        value = parse_int(name, raw)
        if not 0 <= value <= top:
            raise InvalidArgument(f"{name}: {value} is out of range [0, {top}]")
        return value

    def text(self, name: str) -> Optional[str]:
        return self._one(name)

    def many(self, name: str) -> list[str]:
        return [part for value in self._args.get(name, ()) for part in value.split(",") if part]

    def uints(self, name: str) -> list[int]:
        out = []
        for raw in self.many(name):
            value = parse_int(name, raw)
            if not 0 <= value <= _UINT64_MAX:
                raise InvalidArgument(f"{name}: {value} is out of range [0, {_UINT64_MAX}]")
            out.append(value)
        return out


def _paged(key: str, items: list[Any], cursor: Optional[int]) -> dict[str, Any]:
    out: dict[str, Any] = {key: items}
    if cursor is not None:
        out["cursor"] = cursor
    return out


def create_app(api: ClusterAPI, *, registry: CollectorRegistry, ready: Callable[[], bool] = lambda: True) -> Flask:
    """The WSGI app of the cluster API; ``/metrics`` serves ``registry``
    (:func:`frontlas.metrics.frontlas_registry`)."""
    app = Flask("frontlas")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    install_json_errors(app, http_status, log, "cluster API REST")

    @app.get("/cluster/v1/frontier")
    def get_frontier_by_edge() -> Any:
        args = _Args("edge_id")
        return {"frontier": frontier_json(api.get_frontier_by_edge(args.uint("edge_id", required=True)))}

    @app.get("/cluster/v1/frontiers")
    def list_frontiers() -> Any:
        args = _Args("cursor", "count", "edge_ids", "frontier_ids")
        page = api.list_frontiers(args.uint("cursor"), args.uint("count", _UINT32_MAX), args.uints("edge_ids"), args.many("frontier_ids"))
        return _paged("frontiers", [frontier_json(f) for f in page.items], page.cursor)

    @app.get("/cluster/v1/edges")
    def list_edges() -> Any:
        args = _Args("cursor", "count", "edge_ids")
        page = api.list_edges(args.uint("cursor"), args.uint("count", _UINT32_MAX), args.uints("edge_ids"))
        return _paged("edges", [edge_json(e) for e in page.items], page.cursor)

    @app.get("/cluster/v1/edge")
    def get_edge() -> Any:
        args = _Args("edge_id")
        return {"edge": edge_json(api.get_edge(args.uint("edge_id", required=True)))}

    @app.get("/cluster/v1/edges/count")
    def edges_count() -> Any:
        _Args()
        return {"count": api.edges_count()}

    @app.get("/cluster/v1/services")
    def list_services() -> Any:
        args = _Args("cursor", "count", "service_ids")
        page = api.list_services(args.uint("cursor"), args.uint("count", _UINT32_MAX), args.uints("service_ids"))
        return _paged("services", [service_json(s) for s in page.items], page.cursor)

    @app.get("/cluster/v1/service")
    def get_service() -> Any:
        args = _Args("service_id", "frontier_id")
        return {"service": service_json(api.get_service(args.uint("service_id", required=True), args.text("frontier_id")))}

    @app.get("/cluster/v1/services/count")
    def services_count() -> Any:
        _Args()
        return {"count": api.services_count()}

    @app.get("/cluster/v1/health")
    def health() -> Any:
        if _is_ready(ready):
            return {"status": "SERVING"}
        resp = jsonify({"status": "NOT_SERVING"})
        resp.status_code = 417  # as Go's Frontlas answers
        return resp

    install_probes(app, ready, registry=registry, not_ready=NOT_READY, logger=log)
    return app


def _is_ready(ready: Callable[[], bool]) -> bool:
    try:
        return bool(ready())
    except Exception:
        log.exception("readiness check failed")
        return False
