"""A Flask app that reaches edges through a frontier gateway.

HTTP endpoints call an edge's RPC, publish to an edge and list the edges online. The
same process is also a frontier *service*: edges can call its ``greet`` method, and
its ``edge_online``/``edge_offline`` hooks keep a directory of edges, all running
beside the web workers on the SDK's own threads.

One module-level ``Service`` serves the whole process and all its threads. It may be
created before gunicorn forks its workers (``--preload``): each worker notices the
fork and opens its own connection on first use, so it works unchanged under the
``sync``, ``gthread`` and ``gevent`` workers::

    cd sdk/examples/flask_app
    FRONTIER_SERVICE_ADDR=127.0.0.1:30011 FRONTIER_CONTROL_URL=http://127.0.0.1:30010 \\
        gunicorn --preload -w 2 --threads 4 -b 127.0.0.1:8000 app:app

Settings (environment): ``FRONTIER_SERVICE_ADDR`` (default ``127.0.0.1:30011``),
``FRONTIER_SERVICE_NAME`` (``flask-demo``), ``FRONTIER_CONTROL_URL`` (the gateway's
control plane, e.g. ``http://127.0.0.1:30010``; empty: list edges from the hooks),
``FRONTIER_CONTROL_TOKEN`` (its bearer token, if auth is on), ``FRONTIER_TIMEOUT``
(seconds per call, default 10).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from flask import Flask, Response, jsonify, request

from frontier.sdk import (
    BufferFull, EdgeNotOnline, FrontierError, RemoteError, RpcNotOnline, Service, Timeout,
)

SERVICE_ADDR = os.environ.get("FRONTIER_SERVICE_ADDR", "127.0.0.1:30011")
SERVICE_NAME = os.environ.get("FRONTIER_SERVICE_NAME", "flask-demo")
CONTROL_URL = os.environ.get("FRONTIER_CONTROL_URL", "").rstrip("/")
CONTROL_TOKEN = os.environ.get("FRONTIER_CONTROL_TOKEN", "")
TIMEOUT = float(os.environ.get("FRONTIER_TIMEOUT", "10"))


class EdgeDirectory:
    """Edges this process heard come online (``edge_online``) and not yet leave.

    With the gateway's ``exchange.edge_hooks: all`` every service with the hooks hears
    every edge (by default one worker, picked by ``hashby``, hears each), but only from
    the moment its connection is up: a worker that connected late misses edges already online. The
    control plane (``GET /v1/edges``) is the complete list; this is the fallback and
    shows the hooks at work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges: dict[int, dict[str, Any]] = {}

    def online(self, edge_id: int, meta: bytes, addr: str) -> None:
        with self._lock:
            self._edges[edge_id] = {"edge_id": edge_id, "meta": meta.decode("utf-8", "replace"), "addr": addr,
                                    "since": int(time.time()), "seen_by_pid": os.getpid()}

    def offline(self, edge_id: int, meta: bytes, addr: str) -> None:
        with self._lock:
            self._edges.pop(edge_id, None)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._edges.values(), key=lambda e: e["edge_id"])


def greet(req: Any) -> bytes:
    """An RPC edges call: ``edge.call("greet", b"name")``."""
    return b"hello %s from pid %d" % (req.data or b"edge", os.getpid())


directory = EdgeDirectory()

# Connects now (also in the gunicorn master with --preload); forked workers connect
# their own on first use. Handlers and hooks are replayed on every (re)connect.
svc = Service(SERVICE_ADDR, name=SERVICE_NAME, timeout=TIMEOUT)
svc.register("greet", greet)
svc.register_edge_online(directory.online)
svc.register_edge_offline(directory.offline)

app = Flask(__name__)


def _error(status: int, reason: str, exc: BaseException) -> Response:
    resp = jsonify({"error": reason, "message": str(exc)})
    resp.status_code = status
    return resp


@app.errorhandler(FrontierError)
def frontier_error(exc: FrontierError) -> Response:
    """Typed SDK errors as HTTP statuses."""
    if isinstance(exc, (EdgeNotOnline, RpcNotOnline)):
        return _error(404, type(exc).__name__, exc)
    if isinstance(exc, Timeout):
        return _error(504, "Timeout", exc)
    if isinstance(exc, BufferFull):
        return _error(503, "BufferFull", exc)
    if isinstance(exc, RemoteError):
        return _error(502, "RemoteError", exc)
    return _error(502, type(exc).__name__, exc)


def _worker_headers(resp: Response) -> Response:
    """Which process and which gateway connection served this (read after SDK use)."""
    resp.headers["X-Worker-Pid"] = str(os.getpid())
    resp.headers["X-Service-Id"] = str(svc.service_id)
    return resp


@app.post("/edges/<int:edge_id>/call/<method>")
def call_edge(edge_id: int, method: str) -> Response:
    """Call ``method`` on the edge with the request body; answer with its reply."""
    answer = svc.call(edge_id, method, request.get_data(), timeout=TIMEOUT)
    return _worker_headers(Response(answer, mimetype="application/octet-stream"))


@app.post("/edges/<int:edge_id>/publish")
def publish_to_edge(edge_id: int) -> Response:
    """Publish the request body to the edge (``?topic=``); 204 once the edge acked it."""
    svc.publish(edge_id, request.get_data(), topic=request.args.get("topic", ""), timeout=TIMEOUT)
    return _worker_headers(Response(status=204))


@app.get("/edges")
def list_edges() -> Response:
    """Edges online: from the control plane when configured (``?source=hooks`` forces
    this process's hook-fed directory)."""
    if CONTROL_URL and request.args.get("source") != "hooks":
        return jsonify({"source": "controlplane", "edges": _control_plane_edges(), "pid": os.getpid()})
    return jsonify({"source": "hooks", "edges": directory.snapshot(), "pid": os.getpid()})


def _control_plane_edges() -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    page = 1
    while True:
        req = urllib.request.Request(f"{CONTROL_URL}/v1/edges?page={page}&page_size=1000&order=edge_id")
        if CONTROL_TOKEN:
            req.add_header("Authorization", f"Bearer {CONTROL_TOKEN}")
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            body = json.load(resp)
        edges.extend(body["edges"])
        if len(body["edges"]) < 1000:
            return edges
        page += 1


@app.errorhandler(urllib.error.URLError)
def control_plane_down(exc: urllib.error.URLError) -> Response:
    return _error(502, "ControlPlaneUnavailable", exc)


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok", "pid": os.getpid()})
