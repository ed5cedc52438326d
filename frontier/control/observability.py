"""Go's always-on probe listener: ``/healthz``, ``/readyz`` and ``/metrics`` on a port
of their own (``observability.addr``: ``0.0.0.0:9091`` for a frontier, ``9092`` for
Frontlas), whether or not the control plane is on.

The answers are the control plane's (:func:`frontier.control.rest.install_probes`);
anything else is a JSON 404. Runs in a gevent-patched process.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import gevent
from flask import Flask
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer
from prometheus_client import REGISTRY, CollectorRegistry

from frontier.config import parse_addr
from frontier.control.rest import install_json_errors, install_probes

log = logging.getLogger(__name__)


class _DeadlineWSGIServer(WSGIServer):
    """gevent's WSGI server where each connection lives at most ``deadline`` seconds,
    so idle or trickling clients cannot hold the slots probes need."""

    deadline = 10.0

    def handle(self, sock: Any, address: tuple) -> None:  # type: ignore[override]
        with gevent.Timeout(self.deadline, False):
            super().handle(sock, address)


class ObservabilityServer:
    """The probe listener of one process.

    As in Go, a port that cannot be bound is logged as an error and the process keeps
    serving its clients: the probes aimed at it fail, which is what an orchestrator
    notices, while the control plane's copies keep answering.
    """

    #: seconds :meth:`stop` lets open requests finish
    stop_timeout = 1.0
    #: connections served at once (a scraper and two probes need three)
    max_requests = 256
    #: seconds one connection may stay open (keep-alive included)
    connection_deadline = 10.0

    def __init__(self, addr: str, *, ready: Callable[[], bool], registry: CollectorRegistry = REGISTRY,
                 not_ready: str = "not ready", path: str = "observability") -> None:
        host, port = parse_addr(addr, f"{path}.addr")
        self._listen = (host or "0.0.0.0", port)
        app = Flask("frontier.observability")
        install_json_errors(app, lambda err: 500, log, "observability")
        install_probes(app, ready, registry=registry, not_ready=not_ready, logger=log)
        self._app = app
        self._http: Optional[WSGIServer] = None

    @property
    def address(self) -> Optional[tuple[str, int]]:
        """The bound ``(host, port)``, or None while not serving."""
        if self._http is None:
            return None
        host, port = self._http.address[:2]
        return host, port

    def start(self) -> bool:
        """Bind and serve in background greenlets; False (logged) if the port cannot be bound."""
        server = _DeadlineWSGIServer(self._listen, self._app, spawn=Pool(self.max_requests),
                                     log=None, error_log=logging.getLogger("frontier.observability.http"))
        server.deadline = self.connection_deadline
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
