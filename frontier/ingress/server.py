"""The ingress's listeners: plain HTTP and, with certificates, HTTPS.

``Ingress(config, exchange).start()`` binds the listeners; every accepted connection
runs a :class:`~frontier.ingress.proxy.ClientConnection` in its own greenlet, after
the connection cap (``ingress.max_connections``: more are closed at once) and, on
HTTPS, a TLS handshake within ``ingress.header_timeout``. The HTTPS certificates
come from files (``ingress.https.listen.tls``, SNI-selected, re-read when they
change, as the other listeners) and from ACME when ``ingress.acme.directory`` is set.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any

import gevent

from frontier import metrics
from frontier.config import Config
from frontier.listeners import GuardedStreamServer, close_now
from frontier.sessions.limits import ip_key
from frontier.tls import ServerTLS

from .apps import AppStore
from .proxy import ClientConnection

log = logging.getLogger("frontier.ingress")


class Ingress:
    """The HTTP ingress of one gateway. ``apps`` is its :class:`AppStore`, the
    interface the control plane is given."""

    def __init__(self, config: Config, exchange: Any) -> None:
        self.cfg = config.ingress
        #: relays streams to edges held by other frontiers (``ingress.relay_frontlas_api``)
        self.relay: Any = None
        if self.cfg.relay_frontlas_api:  # the config checked that service auth is on
            from .relay import Relay

            self.relay = Relay(self.cfg.relay_frontlas_api, config.servicebound.auth.secrets[0])
        self.apps = AppStore(self.cfg.apps, exchange=exchange, stream_window=config.limits.stream_window, relay=self.relay)
        self.tls: ServerTLS | None = None
        if self.cfg.https.listen.tls.enable:
            self.tls = ServerTLS(self.cfg.https.listen.tls, "ingress.https", alpn=("http/1.1",))
        #: ACME certificates when ``ingress.acme.directory`` is set
        self.acme: Any = None
        if self.cfg.acme.directory:
            from .acme import CertificateManager

            self.acme = CertificateManager(self.cfg.acme, self.cfg.redis, self.apps.hostnames)
        self._front: ssl.SSLContext | None = None
        #: the cluster-wide app log when ``ingress.redis.addr`` is set
        self.app_log: Any = None
        if self.cfg.redis.addr:
            from .cluster import AppLog

            self.app_log = AppLog(self.cfg.redis, self.apps)
        self._servers: dict[str, GuardedStreamServer] = {}
        #: client connections open now (see :meth:`stop`)
        self.connections: set[ClientConnection] = set()
        #: True once :meth:`stop` began: no keep-alive, no new connections
        self.draining = False
        self._per_ip: dict[str, int] = {}  # connections open now by source (ip_key)
        metrics.INGRESS_CONNECTIONS.set_function(lambda: self.open_connections)

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the cluster's app log (if any) and bind and serve (HTTP always; HTTPS
        when it has certificates). Start-up waits up to 5 s to have the cluster's apps."""
        if self.app_log is not None:
            self.app_log.start()
            if not self.app_log.wait_caught_up(5.0):
                log.warning("ingress: the cluster's app log is not read up to date yet; serving what is known")
        listeners = [("http", self.cfg.http.listen)]
        if self.tls is not None or self.acme is not None:
            listeners.append(("https", self.cfg.https.listen))
        for scheme, listen in listeners:
            server = GuardedStreamServer(listen.host_port, lambda sock, addr, scheme=scheme: self._handle(scheme, sock, addr),
                                         backlog=1024)
            server.port_name = f"ingress {scheme}"
            server.max_open = self.cfg.max_connections  # more are reset at accept
            server.on_refused = self._refused
            server.start()
            self._servers[scheme] = server
            log.info("ingress %s listener on %s:%d (%d apps)", scheme, *server.address[:2], len(self.apps))
        if self.acme is not None:
            self.acme.start()

    def stop(self) -> None:
        """Start draining: stop accepting, close connections waiting for a request, and
        answer the requests in progress with ``Connection: close`` (:attr:`active` says
        how many are left; the gateway waits for them up to its drain timeout)."""
        self.draining = True
        for server in self._servers.values():
            server.close()
        for conn in list(self.connections):
            if not conn.busy:
                conn.abort()

    def close(self) -> None:
        """After the drain: stop following the app log, renewing, relaying."""
        if self.app_log is not None:
            self.app_log.stop()
        if self.acme is not None:
            self.acme.stop()
        if self.relay is not None:
            self.relay.close()
        for conn in list(self.connections):
            conn.abort()

    @property
    def active(self) -> int:
        """Requests being answered now."""
        return sum(1 for conn in self.connections if conn.busy)

    def address(self, scheme: str = "http") -> tuple[str, int]:
        """The bound ``(host, port)`` of the ``http`` or ``https`` listener."""
        return self._servers[scheme].address[:2]

    # -- ACME's hook ----------------------------------------------------------------------

    def acme_answer(self, target: str) -> str | None:
        """The key authorization for an ACME HTTP-01 challenge request, else None."""
        return self.acme.answer(target) if self.acme is not None else None

    # -- connections -------------------------------------------------------------------------

    @staticmethod
    def _refused(reason: str) -> None:
        metrics.INGRESS_REFUSED.labels(reason=reason).inc()

    @property
    def open_connections(self) -> int:
        """Client connections open now (both listeners)."""
        return sum(server.open_connections for server in self._servers.values())

    def _handle(self, scheme: str, sock: socket.socket, addr: tuple[str, int]) -> None:
        per_ip = self.cfg.max_connections_per_ip
        key = ip_key(addr[0])
        if per_ip and self._per_ip.get(key, 0) >= per_ip:
            self._refused("max_ip_connections")
            close_now(sock)
            return
        self._per_ip[key] = self._per_ip.get(key, 0) + 1
        try:
            self._serve(scheme, sock, addr)
        finally:
            left = self._per_ip.pop(key) - 1
            if left:
                self._per_ip[key] = left

    def _serve(self, scheme: str, sock: socket.socket, addr: tuple[str, int]) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn: Any = sock
            if scheme == "https":
                conn = self._tls_handshake(sock, addr)
                if conn is None:
                    return
            client = ClientConnection(self, conn, addr, scheme)
            self.connections.add(client)
            try:
                client.serve()
            finally:
                self.connections.discard(client)
        except OSError:
            pass

    def _context(self) -> ssl.SSLContext:
        """The HTTPS context: the certificate files' (picked by SNI among themselves) or,
        with ACME, a front context whose SNI callback picks ACME's certificate for the
        name and falls back to the files'."""
        if self.acme is None:
            assert self.tls is not None
            return self.tls.context()
        if self._front is None:
            front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            front.minimum_version = ssl.TLSVersion.TLSv1_2
            front.set_alpn_protocols(["http/1.1"])
            acme, files = self.acme, self.tls

            def pick(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
                chosen = acme.context_for(server_name or "")
                if chosen is not None:
                    sock.context = chosen
                elif files is not None:
                    ctx = files.context()
                    sock.context = ctx
                    if ctx.sni_callback is not None:  # several files: their own choice by name
                        ctx.sni_callback(sock, server_name, ctx)

            front.sni_callback = pick
            self._front = front
        return self._front

    def _tls_handshake(self, sock: socket.socket, addr: tuple[str, int]) -> ssl.SSLSocket | None:
        try:
            conn = self._context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            log.debug("ingress: cannot start TLS with %s: %s", addr[0], exc)
            metrics.INGRESS_REFUSED.labels(reason="tls_handshake").inc()
            return None
        deadline = time.monotonic() + self.cfg.header_timeout
        try:
            with gevent.Timeout(max(deadline - time.monotonic(), 0.001)):
                conn.do_handshake()
            return conn
        except (gevent.Timeout, OSError, ValueError) as exc:
            log.debug("ingress: TLS handshake with %s failed: %s", addr[0], exc)
            metrics.INGRESS_REFUSED.labels(reason="tls_handshake").inc()
            conn.close()
            return None
