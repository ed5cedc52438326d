"""The backends an app can have, each turning a matched request into a pipe.

- :class:`EdgeHttpBackend`: a service an edge exposes, through a gateway stream.
- :class:`PeerSetBackend`: plain HTTP upstreams, round-robin, with passive health (an
  upstream that fails is skipped for :attr:`PeerSetBackend.down_seconds`).
- :class:`RedirectBackend`: no pipe; the proxy answers with a redirect.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

from frontier.config import IngressApp
from frontier.exchange.gateway_stream import GatewayStream
from frontier.wire.errors import (
    BackendUnreachable, BufferFull, EdgeNotOnline, FrontierError, NotExposed, Timeout,
)
from frontier.wire.events import EXPOSE_PREFIX

from . import pages
from .pipes import Pipe, SocketPipe
from .routes import Match


class ProxyError(Exception):
    """The ingress answers the request itself with ``error`` (a ``pages`` pair)."""

    def __init__(self, error: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


#: how the typed failures of opening a stream to an edge map to answers
_EDGE_ERRORS: tuple[tuple[type[FrontierError], tuple[int, str]], ...] = (
    (EdgeNotOnline, pages.EDGE_NOT_ONLINE),
    (NotExposed, pages.NOT_EXPOSED),
    (BackendUnreachable, pages.BACKEND_UNREACHABLE),
    (Timeout, pages.BACKEND_TIMEOUT),
    (BufferFull, pages.BACKEND_BUSY),
)


def edge_error(exc: FrontierError) -> ProxyError:
    """The answer for a failed stream open."""
    for cls, error in _EDGE_ERRORS:
        if isinstance(exc, cls):
            return ProxyError(error, exc.message)
    return ProxyError(pages.BACKEND_UNREACHABLE, exc.message)


class EdgeHttpBackend:
    """An HTTP service exposed by an edge (``edge_http``)."""

    def __init__(self, app: IngressApp, exchange: Any, stream_window: int, relay: Any = None) -> None:
        opts = app.backend.edge_http_opts
        self.fixed_edge = opts.edge_id or None
        self.target = opts.target
        self.exchange = exchange
        self.stream_window = stream_window
        #: a :class:`~frontier.ingress.relay.Relay` for edges held by other frontiers
        self.relay = relay

    def resolve(self, match: Match) -> tuple[Any, Callable[[str, float], Pipe]]:
        """``(key, open)``: pipes with equal keys are interchangeable (keep-alive reuse)."""
        if self.fixed_edge is not None:
            edge_id = self.fixed_edge
        else:
            label = match.label
            if not label.isdigit() or len(label) > 16:
                raise ProxyError(pages.EDGE_NOT_ONLINE, f"{label!r} is not an edge id (the first label of the hostname names the edge)")
            edge_id = int(label)

        def open_pipe(client_addr: str, timeout: float) -> Pipe:
            if self.relay is not None and edge_id not in self.exchange.edges:
                try:
                    return self.relay.open(edge_id, self.target, timeout)
                except FrontierError as exc:
                    raise edge_error(exc) from None
            stream = GatewayStream(self.exchange, EXPOSE_PREFIX + self.target, addr=client_addr, window=self.stream_window)
            try:
                stream.open(edge_id, timeout)
            except FrontierError as exc:
                stream.close()
                raise edge_error(exc) from None
            return stream

        return ("edge", edge_id, self.target), open_pipe


class PeerSetBackend:
    """Plain HTTP upstreams (``peer_set``), round-robin with passive health."""

    #: seconds an upstream that failed is skipped (unless all are down)
    down_seconds = 10.0

    def __init__(self, app: IngressApp) -> None:
        self.peers: list[tuple[str, int]] = []
        for url in app.backend.peer_set_opts.addrs:
            hostport = url[len("http://"):].rstrip("/")
            host, sep, port = hostport.rpartition(":")
            if not sep or not port.isdigit():
                host, port = hostport, "80"
            self.peers.append((host.strip("[]"), int(port)))
        self._next = itertools.count()
        self._down_until: dict[tuple[str, int], float] = {}

    def resolve(self, match: Match) -> tuple[Any, Callable[[str, float], Pipe]]:
        """``(key, open)``; ``open`` tries healthy upstreams first, then the rest."""
        start = next(self._next)
        n = len(self.peers)
        now = time.monotonic()
        order = [self.peers[(start + i) % n] for i in range(n)]
        healthy = [peer for peer in order if self._down_until.get(peer, 0.0) <= now]
        candidates = healthy + [peer for peer in order if peer not in healthy]

        def open_pipe(client_addr: str, timeout: float) -> Pipe:
            last: FrontierError | None = None
            for peer in candidates:
                try:
                    pipe = SocketPipe.connect(peer[0], peer[1], timeout)
                except FrontierError as exc:
                    self.mark_down(peer)
                    last = exc
                    continue
                pipe.peer_key = peer  # type: ignore[attr-defined]
                return pipe
            assert last is not None
            error = pages.BACKEND_TIMEOUT if isinstance(last, Timeout) else pages.BACKEND_UNREACHABLE
            raise ProxyError(error, f"no upstream of the app answered: {last.message}")

        return ("peers", id(self)), open_pipe

    def mark_down(self, peer: tuple[str, int]) -> None:
        """Skip ``peer`` for :attr:`down_seconds` (passive health)."""
        self._down_until[peer] = time.monotonic() + self.down_seconds


class RedirectBackend:
    """Answers every request with a redirect to ``redirect_opts.to`` plus the request's
    path and query (301 for GET and HEAD, 308 otherwise, so the method is kept)."""

    def __init__(self, app: IngressApp) -> None:
        self.to = app.backend.redirect_opts.to.rstrip("/")

    def location(self, target: str) -> str:
        """The ``Location`` for a request target."""
        return self.to + (target if target.startswith("/") else "/" + target)


def build_backend(app: IngressApp, exchange: Any, stream_window: int, relay: Any = None) -> Any:
    """The backend object for an app's ``backend.kind``."""
    kind = app.backend.kind
    if kind == "edge_http":
        return EdgeHttpBackend(app, exchange, stream_window, relay)
    if kind == "peer_set":
        return PeerSetBackend(app)
    return RedirectBackend(app)
