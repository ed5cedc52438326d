"""Views that reach edges through the gateway: call an edge's RPC, publish to an
edge, list the edges online (from the gateway's control plane)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from frontier.sdk import BufferFull, EdgeNotOnline, FrontierError, RemoteError, RpcNotOnline, Timeout

from .frontier import service


def _error(status: int, reason: str, message: str) -> JsonResponse:
    return JsonResponse({"error": reason, "message": message}, status=status)


def _frontier_error(exc: FrontierError) -> JsonResponse:
    """Typed SDK errors as HTTP statuses."""
    if isinstance(exc, (EdgeNotOnline, RpcNotOnline)):
        return _error(404, type(exc).__name__, str(exc))
    if isinstance(exc, Timeout):
        return _error(504, "Timeout", str(exc))
    if isinstance(exc, BufferFull):
        return _error(503, "BufferFull", str(exc))
    if isinstance(exc, RemoteError):
        return _error(502, "RemoteError", str(exc))
    return _error(502, type(exc).__name__, str(exc))


@csrf_exempt
@require_POST
def call_edge(request: HttpRequest, edge_id: int, method: str) -> HttpResponse:
    """Call ``method`` on the edge with the request body; answer with its reply."""
    try:
        answer = service().call(edge_id, method, request.body, timeout=settings.FRONTIER["TIMEOUT"])
    except FrontierError as exc:
        return _frontier_error(exc)
    return HttpResponse(answer, content_type="application/octet-stream")


@csrf_exempt
@require_POST
def publish_to_edge(request: HttpRequest, edge_id: int) -> HttpResponse:
    """Publish the body to the edge (``?topic=``); 204 once the edge acked it."""
    try:
        service().publish(edge_id, request.body, topic=request.GET.get("topic", ""), timeout=settings.FRONTIER["TIMEOUT"])
    except FrontierError as exc:
        return _frontier_error(exc)
    return HttpResponse(status=204)


@require_GET
def list_edges(request: HttpRequest) -> JsonResponse:
    """Edges online, from ``GET /v1/edges`` of the gateway's control plane; filters
    ``meta`` (prefix) and ``page``/``page_size`` pass through."""
    conf = settings.FRONTIER
    if not conf["CONTROL_URL"]:
        return _error(501, "NotConfigured", "set FRONTIER['CONTROL_URL'] (the gateway's control plane) to list edges")
    query = {k: request.GET[k] for k in ("meta", "page", "page_size") if k in request.GET}
    query.setdefault("page_size", "100")
    url = f"{conf['CONTROL_URL'].rstrip('/')}/v1/edges?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url)
    if conf["CONTROL_TOKEN"]:
        req.add_header("Authorization", f"Bearer {conf['CONTROL_TOKEN']}")
    try:
        with urllib.request.urlopen(req, timeout=conf["TIMEOUT"]) as resp:
            body = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return _error(502, "ControlPlaneUnavailable", str(exc))
    return JsonResponse({"edges": body["edges"], "count": body["count"]})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
