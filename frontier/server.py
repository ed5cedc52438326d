"""Builds one gateway from its config: listeners, exchange, control plane, sinks.

``Gateway(config).start()`` binds the service and edge listeners (and the control
plane when enabled) and returns; ``stop()`` drains: it stops accepting, tells every
client to go away, waits up to ``limits.drain_timeout`` for in-flight calls and
publishes, then closes everything. Run under a gevent-patched process (the CLI
patches before importing this module).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from functools import partial
from typing import Any

import gevent
from gevent.event import Event
from gevent.server import StreamServer

from frontier.config import TLS, Config
from frontier.exchange.router import Exchange
from frontier.sessions.session import ROLE_EDGE, ROLE_SERVICE, Session
from frontier.wire.errors import ErrorCode

log = logging.getLogger("frontier.server")


def server_ssl_context(tls: TLS) -> ssl.SSLContext | None:
    """An SSL context for a listener's ``tls`` block, or None when TLS is off."""
    if not tls.enable:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for pair in tls.certs:
        ctx.load_cert_chain(pair.cert, pair.key)
    if tls.mtls:
        ctx.verify_mode = ssl.CERT_REQUIRED
        for ca in tls.ca_certs:
            ctx.load_verify_locations(ca)
    return ctx


class Gateway:
    """One frontier gateway process: what ``frontier-gevent serve`` runs."""

    #: seconds between sweeps for connections that stopped sending heartbeats
    reap_every = 1.0

    def __init__(self, config: Config, *, listeners: dict[str, socket.socket] | None = None) -> None:
        self.config = config
        #: pre-bound listening sockets by role (``--workers`` shares the edge port)
        self._listeners = dict(listeners or {})
        self.sinks: list[Any] = self._build_sinks()
        self.store: Any = None
        observers: list[Any] = []
        if config.controlplane.enable:
            from frontier.control.store import make_store

            self.store = make_store(config.dao.backend, debug=config.dao.debug)
            observers.append(self.store)
        #: reports this gateway to Frontlas when ``frontlas.enable``
        self.reporter: Any = None
        if config.frontlas.enable:
            from frontier.cluster.reporter import FrontlasReporter

            self.reporter = FrontlasReporter.from_config(config)
            observers.append(self.reporter)
        self.exchange = Exchange(
            limits=config.limits,
            hashby=config.exchange.hashby,
            alloc_edge_ids=config.edgebound.edgeid_alloc_when_no_idservice_on,
            sinks=self.sinks,
            observers=observers,
        )
        self.control_plane: Any = None
        self._servers: dict[str, StreamServer] = {}
        self._reaper: gevent.Greenlet | None = None
        self._stopping = False
        self._stopped = Event()
        self._connections = 0

    def _build_sinks(self) -> list[Any]:
        from frontier.mqm import build_sinks

        sinks = list(build_sinks(self.config.mqm))
        if sinks:  # their clients log every reconnect attempt while a broker is down
            for name in ("pika", "kafka"):
                logging.getLogger(name).setLevel(logging.WARNING)
        return sinks

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every listener and start serving in background greenlets."""
        for role, section in ((ROLE_SERVICE, self.config.servicebound), (ROLE_EDGE, self.config.edgebound)):
            listen = section.listen
            kwargs: dict[str, Any] = {}
            ctx = server_ssl_context(listen.tls)
            if ctx is not None:
                kwargs["ssl_context"] = ctx
            bound = self._listeners.get(role)
            server = StreamServer(listen.host_port if bound is None else bound, partial(self._handle, role),
                                  backlog=1024 if bound is None else None, **kwargs)
            server.start()
            self._servers[role] = server
            log.info("%s listener on %s:%d%s", role, *server.address[:2], " (TLS)" if ctx else "")
        if self.config.controlplane.enable:
            from frontier.control.server import ControlPlane

            cp = self.config.controlplane
            self.control_plane = ControlPlane(
                listen=cp.listen.addr, store=self.store, kicker=self.exchange,
                bearer_tokens=cp.auth.bearer_tokens, ready=self.ready,
            )
            self.control_plane.start()
            log.info("control plane on %s:%d", *self.control_plane.address[:2])
        self._reaper = gevent.spawn(self._reap_silent)
        if self.reporter is not None:
            self.reporter.start(self.address(ROLE_SERVICE), self.address(ROLE_EDGE))

    def ready(self) -> bool:
        """True while the listeners accept connections (and, in a cluster, while
        Frontlas lists this gateway)."""
        return (bool(self._servers) and not self._stopping and all(s.started for s in self._servers.values())
                and (self.reporter is None or self.reporter.registered))

    @property
    def registered(self) -> bool:
        """True while Frontlas lists this gateway (always False without ``frontlas.enable``)."""
        return self.reporter is not None and self.reporter.registered

    def address(self, role: str) -> tuple[str, int]:
        """The bound ``(host, port)`` of the ``service`` or ``edge`` listener."""
        return self._servers[role].address[:2]

    def stop(self, timeout: float | None = None) -> None:
        """Drain and stop: no new connections, GoAway to all, wait for in-flight work
        up to ``timeout`` (default ``limits.drain_timeout``), close. Safe to call twice."""
        if timeout is None:
            timeout = self.config.limits.drain_timeout
        if self._stopping:
            if timeout == 0:
                self._close_all()
            self._stopped.wait(timeout=timeout + 2.0)
            return
        self._stopping = True
        for server in self._servers.values():
            server.close()
        self.exchange.go_away()
        deadline = time.monotonic() + timeout
        while self.exchange.in_flight() and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self._close_all()
        if self._reaper is not None:
            self._reaper.kill(block=False)
        if self.reporter is not None:
            self.reporter.stop()
        if self.control_plane is not None:
            self.control_plane.stop()
        if self.sinks:
            from frontier.mqm import close_all

            close_all(self.sinks)
        self._stopped.set()

    def _close_all(self) -> None:
        for session in self.exchange.sessions():
            session.close(ErrorCode.GOING_AWAY, "the gateway stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` finished; True if it did within ``timeout``."""
        return self._stopped.wait(timeout)

    # -- connections ---------------------------------------------------------------------------

    def _handle(self, role: str, sock: socket.socket, addr: tuple[str, int]) -> None:
        limits = self.config.limits
        if limits.max_connections and self._connections >= limits.max_connections:
            sock.close()
            return
        self._connections += 1
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(sock, addr, role, max_frame_size=limits.max_frame_size, max_out_bytes=limits.max_outgoing_bytes)
            session.run(self.exchange, limits.handshake_timeout)
        finally:
            self._connections -= 1

    def _reap_silent(self) -> None:
        """Close connections that sent nothing for three heartbeat intervals."""
        limit = 3 * self.config.limits.heartbeat_interval
        while True:
            gevent.sleep(min(self.reap_every, limit / 3))
            now = time.monotonic()
            for session in self.exchange.sessions():
                if now - session.last_rx > limit:
                    session.close(ErrorCode.TIMEOUT, f"no heartbeat for {limit:.0f}s")
