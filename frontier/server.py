"""Builds one gateway from its config: listeners, exchange, control plane, sinks.

``Gateway(config).start()`` binds the service and edge listeners (and the control
plane and the observability listener when enabled) and returns; ``stop()`` drains: it stops accepting, leaves the
cluster (Frontlas) and readiness, tells every client to go away, waits up to
``limits.drain_timeout`` for in-flight calls and publishes, answers what is still
unfinished with ``GOING_AWAY``, then closes everything. Run under a gevent-patched
process (the CLI patches before importing this module).

Every accepted socket first passes the :class:`~frontier.sessions.limits.ConnectionGuard`
(connection caps, per-IP rates and bans), then its TLS handshake (when the listener
has TLS), both before a byte of the protocol is read, and both inside
``limits.handshake_timeout`` together with the ``Hello``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from functools import partial
from typing import Any, Callable

import gevent
from gevent.event import Event

from frontier import compiled, metrics
from frontier.auth import authenticators
from frontier.config import TLS, Config
from frontier.exchange.router import Exchange
from frontier.listeners import GuardedStreamServer, close_now
from frontier.process import naming_the_listener
from frontier.sessions import reader
from frontier.sessions.limits import REASONS as GUARD_REASONS, ConnectionGuard, ConnectionRate
from frontier.sessions.session import ROLE_EDGE, ROLE_SERVICE, Session, overdue
from frontier.tls import ServerTLS, build_server_context
from frontier.wire.errors import ErrorCode

log = logging.getLogger("frontier.server")

#: refusal reason (metric label) of a failed or late TLS handshake
TLS_HANDSHAKE = "tls_handshake"


def server_ssl_context(tls: TLS) -> ssl.SSLContext | None:
    """An SSL context for a listener's ``tls`` block, or None when TLS is off (one
    snapshot; a listener of the gateway uses :class:`~frontier.tls.ServerTLS`, which
    follows changes of the files)."""
    if not tls.enable:
        return None
    return build_server_context(tls)


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
            edge_hooks=config.exchange.edge_hooks,
            alloc_edge_ids=config.edgebound.edgeid_alloc_when_no_idservice_on,
            sinks=self.sinks,
            observers=observers,
            authenticators=authenticators(config),
        )
        #: connection caps, per-IP rates and bans, checked at accept
        self.guard = ConnectionGuard(config.limits)
        #: each TLS listener's certificates, re-read when their files change
        self.tls: dict[str, ServerTLS] = {}
        for role, section in ((ROLE_SERVICE, config.servicebound), (ROLE_EDGE, config.edgebound)):
            if section.listen.tls.enable:
                self.tls[role] = ServerTLS(section.listen.tls, f"{role}bound")
        #: callables run (each in its own greenlet) when a drain starts, e.g. to
        #: deregister from a registry; the Frontlas reporter is stopped the same way
        self.drain_hooks: list[Callable[[], Any]] = []
        self.control_plane: Any = None
        #: Go's /healthz, /readyz, /metrics listener (``observability``), when on and bound
        self.observability: Any = None
        #: the HTTP ingress when ``ingress.enable`` (see :mod:`frontier.ingress`)
        self.ingress: Any = None
        self._servers: dict[str, GuardedStreamServer] = {}
        #: called with the number of edge connections when it changes (``--workers``:
        #: :class:`~frontier.cluster.workers.ReusePortValve`)
        self.on_edge_count: Callable[[int], None] | None = None
        self._reaper: gevent.Greenlet | None = None
        self._stopping = False
        self._stopped = Event()
        self._refused = {reason: {role: metrics.CONNECTIONS_REFUSED.labels(role=role, reason=reason)
                                  for role in (ROLE_SERVICE, ROLE_EDGE)}
                         for reason in (*GUARD_REASONS, TLS_HANDSHAKE)}

    def _build_sinks(self) -> list[Any]:
        from frontier.mqm import build_sinks

        sinks = list(build_sinks(self.config.mqm))
        if sinks:
            # while a broker is down pika and kafka-python log errors with tracebacks
            # several times a second (pika: ~7 per connect attempt); each sink logs its
            # broker's health itself (frontier.mqm), once per change, rate-limited
            logging.getLogger("pika").setLevel(logging.CRITICAL)
            logging.getLogger("kafka").setLevel(logging.CRITICAL)
        return sinks

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every listener and start serving in background greenlets."""
        log.info("relay hot path: %s", "compiled (mypyc)" if compiled.mode == "compiled" else "plain Python")
        for role, section in ((ROLE_SERVICE, self.config.servicebound), (ROLE_EDGE, self.config.edgebound)):
            listen = section.listen
            bound = self._listeners.get(role)
            # TLS is not StreamServer's: the handshake must run under the handshake deadline
            server = GuardedStreamServer(listen.host_port if bound is None else bound, partial(self._handle, role),
                                         backlog=1024 if bound is None else None)
            server.port_name = f"{role} listener"
            with naming_the_listener(f"the {role} listener", f"{role}bound.listen.addr", listen.addr):
                server.start()
            self._servers[role] = server
            tls = self.tls.get(role)
            log.info("%s listener on %s:%d%s", role, *server.address[:2],
                     (" (mTLS)" if tls.tls.mtls else " (TLS)") if tls else "")
        if self.config.ingress.enable:
            from frontier.ingress import Ingress

            self.ingress = Ingress(self.config, self.exchange)
            self.ingress.start()
        if self.config.controlplane.enable:
            from frontier.control.server import ControlPlane

            cp = self.config.controlplane
            cp_tls = ServerTLS(cp.listen.tls, "controlplane", alpn=("h2", "http/1.1")) if cp.listen.tls.enable else None
            self.control_plane = ControlPlane(
                listen=cp.listen.addr, store=self.store, kicker=self.exchange,
                bearer_tokens=cp.auth.bearer_tokens, ready=self.ready, tls=cp_tls, limits=self.config.limits,
                apps=self.ingress.apps if self.ingress is not None else None,
            )
            with naming_the_listener("the control plane", "controlplane.listen.addr", cp.listen.addr):
                self.control_plane.start()
            log.info("control plane on %s:%d", *self.control_plane.address[:2])
        if self.config.observability.enable:
            from frontier.control.observability import ObservabilityServer

            self.observability = ObservabilityServer(self.config.observability.addr, ready=self.ready,
                                                     limits=self.config.limits)
            self.observability.start()
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
        """Drain and stop; safe to call twice (a second call with ``timeout=0`` cuts a
        drain short).

        1. Stop accepting; readiness turns false.
        2. Leave the cluster: the Frontlas reporter unregisters and every
           :attr:`drain_hooks` entry runs, each in its own greenlet, so clients that
           look frontiers up stop being sent here.
        3. ``GoAway(GOING_AWAY)`` to every client (SDKs reconnect elsewhere, with
           jitter, and finish what is in flight here); new handshakes are refused.
        4. Wait up to ``timeout`` (default ``limits.drain_timeout``) for the calls and
           publishes in flight to be answered.
        5. Answer every one still unfinished with ``GOING_AWAY`` (so its caller gets
           ``GoingAway``, never silence), close every connection, stop the rest.
        """
        if timeout is None:
            timeout = self.config.limits.drain_timeout
        if self._stopping:
            if timeout == 0:
                self._abort_and_close("the drain was cut short")
            self._stopped.wait(timeout=timeout + 2.0)
            return
        self._stopping = True
        for server in self._servers.values():
            server.close()
        if self.ingress is not None:
            self.ingress.stop()
        leaving = [gevent.spawn(self._run_drain_hook, hook) for hook in self.drain_hooks]
        if self.reporter is not None:
            leaving.append(gevent.spawn(self._run_drain_hook, self.reporter.stop))
        self.exchange.go_away()
        in_flight = self.exchange.in_flight()
        if timeout > 0:
            log.info("draining: %d calls and publishes in flight, waiting up to %.1fs", in_flight, timeout)
        deadline = time.monotonic() + timeout
        while (self.exchange.in_flight() or (self.ingress is not None and self.ingress.active)) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self._abort_and_close()
        if self._reaper is not None:
            self._reaper.kill(block=False)
        gevent.joinall(leaving, timeout=max(0.0, deadline - time.monotonic()) + 2.0)
        # the readers own their sockets' end: let them say goodbye (bounded)
        end = time.monotonic() + Session.goodbye_timeout + 0.5
        while self.guard.total and time.monotonic() < end:
            gevent.sleep(0.02)
        if self.control_plane is not None:
            self.control_plane.stop()
        if self.ingress is not None:
            self.ingress.close()
        if self.observability is not None:
            self.observability.stop()
        if self.sinks:
            from frontier.mqm import close_all

            close_all(self.sinks)
        self._stopped.set()

    @staticmethod
    def _run_drain_hook(hook: Callable[[], Any]) -> None:
        try:
            hook()
        except Exception:
            log.exception("drain hook %r failed", hook)

    def _abort_and_close(self, why: str = "the drain deadline passed") -> None:
        unfinished = self.exchange.abort_in_flight(ErrorCode.GOING_AWAY, "the gateway stopped before this finished")
        if unfinished:
            log.warning("%s: %d calls and publishes answered GOING_AWAY", why, unfinished)
        self._close_all()

    def _close_all(self) -> None:
        for session in self.exchange.sessions():
            session.close(ErrorCode.GOING_AWAY, "the gateway stopped")

    def listener(self, role: str) -> GuardedStreamServer | None:
        """The started listener of ``role`` ("service" or "edge"), or None."""
        return self._servers.get(role)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` finished; True if it did within ``timeout``."""
        return self._stopped.wait(timeout)

    # -- connections ---------------------------------------------------------------------------

    def _handle(self, role: str, sock: socket.socket, addr: tuple[str, int]) -> None:
        ip = addr[0]
        refused = self.guard.admit(role, ip)
        if self.on_edge_count is not None and role == ROLE_EDGE:
            self.on_edge_count(self.guard.by_role[ROLE_EDGE])
        if refused is not None:
            self._refused[refused][role].inc()
            close_now(sock)
            return
        limits = self.config.limits
        deadline = time.monotonic() + limits.handshake_timeout
        conn = sock
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.tls.get(role)
            if tls is not None:
                conn = self._tls_handshake(role, tls, sock, addr, deadline)
                if conn is None:
                    return
            session = Session(conn, addr, role, max_frame_size=min(limits.max_handshake_size, limits.max_frame_size),
                              max_out_bytes=limits.max_outgoing_bytes,
                              rate=ConnectionRate.for_role(limits, role, time.monotonic()),
                              lean=self.config.exchange.lean_relay)
            reader.serve(session, self.exchange, max(deadline - time.monotonic(), 0.001))
        except OSError:
            pass  # the peer vanished before its session began
        finally:
            if conn is not sock and conn is not None:
                conn.close()  # the TLS socket took over the descriptor
            self.guard.release(role, ip)
            if self.on_edge_count is not None and role == ROLE_EDGE:
                self.on_edge_count(self.guard.by_role[ROLE_EDGE])

    def _tls_handshake(self, role: str, tls: ServerTLS, sock: socket.socket, addr: tuple[str, int],
                       deadline: float) -> ssl.SSLSocket | None:
        """Wrap and handshake within the handshake deadline; None (closed) on failure."""
        try:
            conn = tls.context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            log.debug("%s: cannot start TLS with %s:%d: %s", role, addr[0], addr[1], exc)
            self._refused[TLS_HANDSHAKE][role].inc()
            return None
        timer = gevent.Timeout(max(deadline - time.monotonic(), 0.001))
        timer.start()
        try:
            conn.do_handshake()
            return conn
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            why = "no TLS handshake within the deadline"
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            why = str(exc)
        finally:
            timer.close()
        log.debug("%s: TLS handshake with %s:%d failed: %s", role, addr[0], addr[1], why)
        self._refused[TLS_HANDSHAKE][role].inc()
        conn.close()
        return None

    def _reap_silent(self) -> None:
        """Close connections that sent nothing for three heartbeat intervals, and those
        whose edge token expired (the SDK reconnects with fresh credentials when they
        come from a callable)."""
        limit = 3 * self.config.limits.heartbeat_interval
        while True:
            gevent.sleep(min(self.reap_every, limit / 3))
            now = time.monotonic()
            self.guard.prune_if_due(now)
            heard_since = now - limit
            for session in overdue(self.exchange.sessions(), heard_since, time.time()):
                if session.last_rx < heard_since:  # (else: its credentials expired)
                    session.close(ErrorCode.TIMEOUT, f"no heartbeat for {limit:.0f}s")
                else:
                    session.close(ErrorCode.UNAUTHORIZED, "the edge token expired")
