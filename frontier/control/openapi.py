"""The OpenAPI 3 document of the REST API, served at ``/openapi.json``.

Written as data. Query parameters come from :mod:`frontier.control.params`, the
same tables the server parses requests with; a test checks that every path here
is served and every served path is here.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from frontier.control import params as P

_KINDS = {
    "string": {"type": "string"},
    "int64": {"type": "integer", "format": "int64"},
    "uint64": {"type": "integer", "format": "uint64", "minimum": 0, "maximum": 2**64 - 1},
    "boolean": {"type": "boolean"},
    "number": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 365 * 86400},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "bad input: unknown, repeated or malformed parameter"),
    "401": _json(_ref("Error"), "missing or invalid bearer token (when auth is on)"),
}
_NOT_FOUND = {"404": _json(_ref("Error"), "no such edge or service online")}


def _query(spec: Sequence[P.Param], required: Sequence[str] = ()) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "in": "query", "required": p.name in required, "description": p.doc,
         "schema": dict(_KINDS[p.kind])}
        for p in spec
    ]


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": dict(_KINDS["uint64"])}


def _list(op: str, summary: str, spec: Sequence[P.Param], response: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op,
            "summary": summary,
            "tags": ["edges" if "Edge" in op else "services"],
            "parameters": _query(spec),
            "responses": {"200": _json(_ref(response), "one page and the total count of matches"), **_ERRORS},
        }
    }


def _item(kind: str, id_name: str) -> dict[str, Any]:
    cap = kind.capitalize()
    return {
        "parameters": [_id_param(id_name)],
        "get": {
            "operationId": f"Get{cap}",
            "summary": f"Get one online {kind}",
            "tags": [f"{kind}s"],
            "responses": {"200": _json(_ref(cap), f"the {kind}"), **_ERRORS, **_NOT_FOUND},
        },
        "delete": {
            "operationId": f"Kick{cap}",
            "summary": f"Kick the {kind} offline (closes its connection; by default it reconnects after a delay)",
            "tags": [f"{kind}s"],
            "parameters": _query(P.KICK),
            "responses": {"200": _json(_ref("Empty"), "kicked"), **_ERRORS, **_NOT_FOUND},
        },
    }


_BANS: dict[str, Any] = {
    "/v1/bans": {
        "get": {
            "operationId": "ListBans",
            "summary": "List the edge bans in force, soonest to end first",
            "tags": ["bans"],
            "responses": {"200": _json(_ref("ListBansResponse"), "every ban in force"), **_ERRORS},
        }
    },
    "/v1/bans/{edge_id}": {
        "parameters": [_id_param("edge_id")],
        "put": {
            "operationId": "BanEdge",
            "summary": "Ban an edge id for a while (replacing a ban it had); an online edge is closed, "
                       "and connecting is refused with BANNED until the ban ends",
            "tags": ["bans"],
            "parameters": _query(P.BAN_EDGE, required=("duration",)),
            "responses": {"200": _json(_ref("Ban"), "the ban"), **_ERRORS},
        },
        "delete": {
            "operationId": "LiftBan",
            "summary": "Lift an edge's ban",
            "tags": ["bans"],
            "responses": {"200": _json(_ref("LiftBanResponse"), "lifted: false if there was none"), **_ERRORS},
        },
    },
}


def _probe(op: str, summary: str, codes: dict[str, str], content_type: str = "application/json") -> dict[str, Any]:
    schema = {"type": "object"} if content_type == "application/json" else {"type": "string"}
    return {
        "get": {
            "operationId": op,
            "summary": summary,
            "tags": ["operations"],
            "security": [],  # no token needed: probes and scrapers carry none
            "responses": {
                code: {"description": text, "content": {content_type: {"schema": dict(schema)}}}
                for code, text in codes.items()
            },
        }
    }


def _list_of(field: str, items: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [field, "count"],
        "properties": {
            field: {"type": "array", "items": items},
            "count": {"type": "integer", "description": "all matches over all pages (never -1)"},
        },
    }


_STRINGS = {"type": "array", "items": {"type": "string"}}

_APP_NOT_FOUND = {"404": _json(_ref("Error"), "no such app, or the ingress is not enabled")}
_APP_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _apps_paths() -> dict[str, Any]:
    tag = ["apps"]
    return {
        "/v1/apps": {
            "get": {"operationId": "ListApps", "summary": "List the HTTP ingress's apps", "tags": tag,
                    "responses": {"200": _json(_list_of("apps", _ref("App")), "every app"), **_ERRORS, **_APP_NOT_FOUND}},
        },
        "/v1/apps/{id}": {
            "parameters": [dict(_APP_ID)],
            "get": {"operationId": "GetApp", "summary": "Get one app", "tags": tag,
                    "responses": {"200": _json(_ref("App"), "the app"), **_ERRORS, **_APP_NOT_FOUND}},
            "put": {"operationId": "PutApp", "summary": "Create or replace an app (applied at once, on every node of a cluster)",
                    "tags": tag, "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("App")}}},
                    "responses": {"200": _json(_ref("App"), "the app as stored"),
                                  "400": _json(_ref("Error"), "invalid app: the message starts with the field's path"),
                                  "401": _ERRORS["401"], **_APP_NOT_FOUND}},
            "delete": {"operationId": "DeleteApp", "summary": "Delete an app", "tags": tag,
                       "responses": {"200": _json(_ref("Empty"), "deleted"), **_ERRORS, **_APP_NOT_FOUND}},
        },
    }


_OBJ = {"type": "object"}
_APP_SCHEMA = {
    "type": "object",
    "required": ["id", "frontends", "backend"],
    "description": "edgerouter's application shape; see docs/ingress.md",
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
        "frontends": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["hostname"]},
            "hostname": {"type": "string", "description": "exact, or *. plus a hostname (one wildcard label)"},
            "path_prefix": {"type": "string", "default": "/"}}}},
        "backend": {"type": "object", "required": ["kind"], "properties": {
            "kind": {"type": "string", "enum": ["edge_http", "peer_set", "redirect"]},
            "edge_http_opts": {"type": "object", "properties": {
                "edge_id": dict(_KINDS["uint64"]), "edge_from": {"type": "string", "enum": ["", "subdomain"]},
                "target": {"type": "string"}}},
            "peer_set_opts": {"type": "object", "properties": {"addrs": _STRINGS}},
            "redirect_opts": {"type": "object", "properties": {"to": {"type": "string"}}}}},
        "auth": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["none", "bearer", "basic"]},
            "tokens": _STRINGS, "users": _STRINGS}},
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "frontier-gevent control plane",
        "version": "1.0",
        "description": (
            "Query, kick and ban the edges and services connected to one frontier-gevent "
            "gateway, and manage its HTTP ingress's apps. The same calls are served over gRPC "
            "(controlplane.ControlPlane) on the same port."
        ),
        "license": {"name": "Apache 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0.html"},
    },
    "servers": [{"url": "/"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/v1/edges": _list("ListEdges", "List online edges", P.LIST_EDGES, "ListEdgesResponse"),
        "/v1/edges/rpcs": _list("ListEdgeRPCs", "List RPCs registered by edges", P.LIST_EDGE_RPCS, "ListEdgeRPCsResponse"),
        "/v1/edges/{edge_id}": _item("edge", "edge_id"),
        "/v1/services": _list("ListServices", "List online services", P.LIST_SERVICES, "ListServicesResponse"),
        "/v1/services/rpcs": _list(
            "ListServiceRPCs", "List RPCs registered by services", P.LIST_SERVICE_RPCS, "ListServiceRPCsResponse"
        ),
        "/v1/services/topics": _list(
            "ListServiceTopics", "List topics declared by services", P.LIST_SERVICE_TOPICS, "ListServiceTopicsResponse"
        ),
        "/v1/services/{service_id}": _item("service", "service_id"),
        **_BANS,
        **_apps_paths(),
        "/healthz": _probe("Healthz", "Liveness: the process answers", {"200": "alive"}),
        "/readyz": _probe("Readyz", "Readiness: the gateway is ready", {"200": "ready", "503": "not ready yet"}),
        "/metrics": _probe("Metrics", "Prometheus metrics", {"200": "text exposition format"}, "text/plain"),
        "/openapi.json": {
            "get": {
                "operationId": "OpenAPI",
                "summary": "This document",
                "tags": ["operations"],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document"), "401": _ERRORS["401"]},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "required only when controlplane.auth.bearer_tokens is set",
            }
        },
        "schemas": {
            "Edge": {
                "type": "object",
                "required": ["edge_id", "meta", "addr", "create_time", "rpcs"],
                "properties": {
                    "edge_id": dict(_KINDS["uint64"]),
                    "meta": {"type": "string", "description": "meta as UTF-8 (bad bytes become U+FFFD)"},
                    "addr": {"type": "string", "description": "remote address of the connection"},
                    "create_time": {"type": "integer", "format": "int64", "description": "unix seconds"},
                    "rpcs": _STRINGS,
                },
            },
            "Service": {
                "type": "object",
                "required": ["service_id", "service", "addr", "create_time", "rpcs", "topics"],
                "properties": {
                    "service_id": dict(_KINDS["uint64"]),
                    "service": {"type": "string", "description": "service name"},
                    "addr": {"type": "string"},
                    "create_time": {"type": "integer", "format": "int64", "description": "unix seconds"},
                    "rpcs": _STRINGS,
                    "topics": _STRINGS,
                },
            },
            "App": _APP_SCHEMA,
            "ListEdgesResponse": _list_of("edges", _ref("Edge")),
            "ListEdgeRPCsResponse": _list_of("rpcs", {"type": "string"}),
            "ListServicesResponse": _list_of("services", _ref("Service")),
            "ListServiceRPCsResponse": _list_of("rpcs", {"type": "string"}),
            "ListServiceTopicsResponse": _list_of("topics", {"type": "string"}),
            "Empty": {"type": "object", "description": "KickEdgeResponse / KickServiceResponse"},
            "Ban": {
                "type": "object",
                "required": ["edge_id", "until", "remaining", "reason", "create_time"],
                "properties": {
                    "edge_id": dict(_KINDS["uint64"]),
                    "until": {"type": "number", "description": "unix time (seconds) the ban ends"},
                    "remaining": {"type": "number", "description": "seconds left"},
                    "reason": {"type": "string"},
                    "create_time": {"type": "integer", "format": "int64", "description": "unix seconds"},
                },
            },
            "ListBansResponse": _list_of("bans", _ref("Ban")),
            "LiftBanResponse": {"type": "object", "required": ["lifted"], "properties": {"lifted": {"type": "boolean"}}},
            "Error": {
                "type": "object",
                "required": ["code", "reason", "message"],
                "properties": {
                    "code": {"type": "integer", "description": "the HTTP status"},
                    "reason": {"type": "string", "description": "e.g. INVALID_ARGUMENT, EDGE_NOT_ONLINE"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3 document (callers may modify it)."""
    return copy.deepcopy(_DOCUMENT)
