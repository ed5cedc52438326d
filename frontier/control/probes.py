"""The answers of ``/healthz``, ``/readyz`` and ``/metrics``, written once, without Flask.

The control plane and Frontlas' cluster API serve them through their Flask apps
(:func:`frontier.control.rest.install_probes`); the observability listener serves
them as the plain WSGI app :func:`probe_app`, so a gateway that runs only that
listener does not load Flask (some 11,000 objects more for every garbage-collector
pass). Every answer is JSON except ``/metrics`` (Prometheus text); none needs a token.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

#: the paths :func:`probe` answers
PATHS = ("/healthz", "/readyz", "/metrics")

JSON = "application/json"

#: one answer: HTTP status, content type, body
Answer = tuple[int, str, bytes]


def _json(status: int, body: dict[str, Any]) -> Answer:
    return status, JSON, json.dumps(body).encode() + b"\n"


def error_answer(status: int, reason: str, message: str) -> Answer:
    """An error in the REST APIs' shape: ``{"code", "reason", "message"}``."""
    return _json(status, {"code": status, "reason": reason, "message": message})


def probe(path: str, ready: Callable[[], bool], *, registry: CollectorRegistry = REGISTRY,
          not_ready: str = "not ready", logger: logging.Logger = log) -> Answer:
    """The answer for one of :data:`PATHS`: ``/healthz`` (the process answers),
    ``/readyz`` (``ready()`` decides; 503 ``NOT_READY`` with ``not_ready`` when it says
    no or raises), ``/metrics`` (``registry`` as Prometheus text)."""
    if path == "/healthz":
        return _json(200, {"status": "ok"})
    if path == "/readyz":
        try:
            is_ready = bool(ready())
        except Exception as exc:
            logger.exception("readiness check failed")
            return error_answer(503, "NOT_READY", f"readiness check failed ({exc.__class__.__name__})")
        return _json(200, {"status": "ready"}) if is_ready else error_answer(503, "NOT_READY", not_ready)
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(registry)
    raise ValueError(f"not a probe path: {path!r}")


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def probe_app(ready: Callable[[], bool], *, registry: CollectorRegistry = REGISTRY, not_ready: str = "not ready",
              logger: logging.Logger = log) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI app serving only :data:`PATHS` (GET or HEAD); anything else is a JSON
    404 (or 405 for another method)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        headers: list[tuple[str, str]] = []
        if path not in PATHS:
            status, content_type, body = error_answer(404, "NOT_FOUND", f"no such path here: {path[:100]}; "
                                                      "this port serves " + ", ".join(PATHS))
        elif method not in ("GET", "HEAD"):
            status, content_type, body = error_answer(405, "METHOD_NOT_ALLOWED", "only GET and HEAD")
            headers.append(("Allow", "GET, HEAD"))
        else:
            status, content_type, body = probe(path, ready, registry=registry, not_ready=not_ready, logger=logger)
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, '')}".rstrip(), headers)
        return [b""] if method == "HEAD" else [body]

    return app
