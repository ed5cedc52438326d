"""Which app serves a request: frontends matched by hostname, then path prefix.

The order frp's vhost router and Traefik use: an exact hostname beats a wildcard
(``*.example.com`` matches one label), and among the frontends of one hostname the
longest path prefix wins. A request whose exact hostname has no matching prefix
falls through to the wildcard. Paths are matched after percent-decoding and removing
dot segments, so ``/%61dmin`` or ``/x/../admin`` cannot slip past an ``/admin``
frontend to a less specific app.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote

from frontier.config import Frontend, IngressApp


@dataclass(frozen=True, slots=True)
class Match:
    """The app that serves a request, the frontend that matched, and the label the
    wildcard matched (``""`` for an exact hostname)."""

    app: IngressApp
    frontend: Frontend
    label: str


class RouteTable:
    """An immutable index of apps' frontends; rebuild it when the apps change."""

    def __init__(self, apps: Iterable[IngressApp]) -> None:
        exact: dict[str, list[tuple[str, IngressApp, Frontend]]] = {}
        wild: dict[str, list[tuple[str, IngressApp, Frontend]]] = {}
        for app in apps:
            for frontend in app.frontends:
                host = frontend.hostname
                table, key = (wild, host[2:]) if host.startswith("*.") else (exact, host)
                table.setdefault(key, []).append((frontend.path_prefix, app, frontend))
        for table in (exact, wild):
            for entries in table.values():
                entries.sort(key=lambda entry: (-len(entry[0]), entry[1].id))  # longest prefix first
        self._exact = exact
        self._wild = wild

    def match(self, host: str, path: str) -> Match | None:
        """The most specific frontend for ``host`` (lower-case, no port) and ``path``."""
        path = normalize_path(path)
        for prefix, app, frontend in self._exact.get(host, ()):
            if path.startswith(prefix):
                return Match(app, frontend, "")
        label, dot, parent = host.partition(".")
        if dot and label:
            for prefix, app, frontend in self._wild.get(parent, ()):
                if path.startswith(prefix):
                    return Match(app, frontend, label)
        return None

    def hostnames(self) -> set[str]:
        """Every exact hostname of every frontend (what ACME may issue certificates for)."""
        return set(self._exact)


def normalize_path(path: str) -> str:
    """Percent-decoded path without dot segments, for matching only (the backend gets
    the request target as sent)."""
    decoded = unquote(path.split("?", 1)[0].split("#", 1)[0]) or "/"
    if not decoded.startswith("/"):
        decoded = "/" + decoded
    cleaned = posixpath.normpath(decoded)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if decoded.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def request_host(host_header: str) -> str:
    """The Host header's name, lower-case, without port or trailing dot."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")
