"""Go's always-on probe listener: ``/healthz``, ``/readyz`` and ``/metrics`` on a port
of their own (``observability.addr``: ``0.0.0.0:9091`` for a frontier, ``9092`` for
Frontlas), whether or not the control plane is on.

The answers are the control plane's (:mod:`frontier.control.probes`), served as a plain
WSGI app (no Flask in a gateway that runs only this listener); anything else is a
JSON 404. The port is hardened like the control plane's: request
heads and idle connections have deadlines (``limits.http_header_timeout``,
``limits.http_idle_timeout``), connections are capped (``limits.max_http_connections``)
and accepting survives descriptor exhaustion. Runs in a gevent-patched process.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from gevent.pool import Pool
from gevent.pywsgi import WSGIServer
from prometheus_client import REGISTRY, CollectorRegistry

from frontier.config import parse_addr
from frontier.control.probes import probe_app
from frontier.listeners import DeadlineWSGIHandler, GuardedAccept

log = logging.getLogger(__name__)


class _ProbeWSGIServer(GuardedAccept, WSGIServer):
    """gevent's WSGI server with the control plane's head and idle deadlines and the
    guarded, capped accept loop."""

    handler_class = DeadlineWSGIHandler
    header_timeout = 10.0
    idle_timeout = 60.0
    port_name = "observability"


class ObservabilityServer:
    """The probe listener of one process.

    As in Go, a port that cannot be bound is logged as an error and the process keeps
    serving its clients: the probes aimed at it fail, which is what an orchestrator
    notices, while the control plane's copies keep answering.
    """

    #: seconds :meth:`stop` lets open requests finish
    stop_timeout = 1.0

    def __init__(self, addr: str, *, ready: Callable[[], bool], registry: CollectorRegistry = REGISTRY,
                 not_ready: str = "not ready", limits: Any = None, path: str = "observability") -> None:
        """``limits``: a config ``limits`` section with ``http_header_timeout``,
        ``http_idle_timeout`` and ``max_http_connections`` (None: the defaults)."""
        host, port = parse_addr(addr, f"{path}.addr")
        self._listen = (host or "0.0.0.0", port)
        self._limits = limits
        self._app = probe_app(ready, registry=registry, not_ready=not_ready, logger=log)
        self._http: Optional[_ProbeWSGIServer] = None

    @property
    def address(self) -> Optional[tuple[str, int]]:
        """The bound ``(host, port)``, or None while not serving."""
        if self._http is None:
            return None
        host, port = self._http.address[:2]
        return host, port

    def start(self) -> bool:
        """Bind and serve in background greenlets; False (logged) if the port cannot be bound."""
        server = _ProbeWSGIServer(self._listen, self._app, spawn=Pool(),
                                  log=None, error_log=logging.getLogger("frontier.observability.http"))
        if self._limits is not None:
            server.header_timeout = self._limits.http_header_timeout
            server.idle_timeout = self._limits.http_idle_timeout
            server.max_open = self._limits.max_http_connections
        try:
            server.start()
        except OSError as exc:
            log.error("observability listener: cannot listen on %s:%d (%s); its /healthz, /readyz and /metrics "
                      "are not served", *self._listen, exc.strerror or exc)
            return False
        self._http = server
        log.info("observability listener (/healthz, /readyz, /metrics) on %s:%d", *server.address[:2])
        return True

    def stop(self) -> None:
        """Stop accepting and free the port; safe to call twice."""
        if self._http is not None:
            self._http.stop(timeout=self.stop_timeout)
            self._http = None
