"""Errors a person can read: HTML or JSON (by ``Accept``), with a machine-readable
``X-Frontier-Error`` header naming the error."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

#: (status, error name) of every error the ingress answers itself
NO_APP = (404, "NO_APP")
EDGE_NOT_ONLINE = (502, "EDGE_NOT_ONLINE")
NOT_EXPOSED = (403, "NOT_EXPOSED")
BACKEND_UNREACHABLE = (502, "BACKEND_UNREACHABLE")
BAD_BACKEND_RESPONSE = (502, "BAD_BACKEND_RESPONSE")
BACKEND_TIMEOUT = (504, "BACKEND_TIMEOUT")
BACKEND_BUSY = (503, "BACKEND_BUSY")
UNAUTHORIZED = (401, "UNAUTHORIZED")
BAD_REQUEST = (400, "BAD_REQUEST")
REQUEST_TIMEOUT = (408, "REQUEST_TIMEOUT")
BODY_TOO_LARGE = (413, "BODY_TOO_LARGE")
HEADERS_TOO_LARGE = (431, "HEADERS_TOO_LARGE")

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
            301: "Moved Permanently", 308: "Permanent Redirect", 200: "OK",
            413: "Content Too Large", 431: "Request Header Fields Too Large", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def reason(status: int) -> str:
    """The reason phrase the ingress sends with ``status``."""
    return _REASONS.get(status, "")


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """A rendered error answer: status, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def wants_json(accept: str) -> bool:
    """True when the client prefers JSON to HTML (an API client, not a browser)."""
    accept = accept.lower()
    if "text/html" in accept:
        return False
    return "json" in accept


def render(error: tuple[int, str], message: str, accept: str = "", extra: list[tuple[str, str]] | None = None) -> ErrorPage:
    """The answer for ``error`` (a ``(status, NAME)`` pair above) explaining ``message``."""
    status, name = error
    reason = _REASONS.get(status, "Error")
    if wants_json(accept):
        body = json.dumps({"error": name, "status": status, "message": message}).encode()
        ctype = "application/json"
    else:
        body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{status} {reason}</title></head>"
                f"<body><h1>{status} {reason}</h1><p>{html.escape(message)}</p>"
                f"<p><small>frontier ingress &middot; {name}</small></p></body></html>\n").encode()
        ctype = "text/html; charset=utf-8"
    headers = [("content-type", ctype), ("content-length", str(len(body))), ("x-frontier-error", name),
               ("cache-control", "no-store"), *(extra or [])]
    return ErrorPage(status, headers, body)
