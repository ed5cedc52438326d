"""The control plane's one listening port: REST (HTTP/1) and gRPC (HTTP/2) together.

As the Go frontier does with cmux, each new connection is sniffed: one that opens
with the HTTP/2 client preface (``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``) is gRPC,
anything else is HTTP/1 REST. grpcio cannot adopt an accepted socket, so gRPC runs
on a private Unix socket (or loopback port where there is none) and sniffed HTTP/2
connections are spliced to it byte for byte; HTTP/1 connections go to gevent's
WSGI handler with the Flask app. The sniff only peeks (``MSG_PEEK``): neither side
loses a byte.

With TLS (``controlplane.listen.tls``) the port terminates TLS first, within the
sniff deadline, and then decides by ALPN instead of peeking: a client that
negotiated ``h2`` (every gRPC client does) is gRPC, anything else (``http/1.1`` or
no ALPN) is REST over HTTP/1.1. HTTP/2 over TLS without ALPN is not supported.
mTLS applies to both.

Runs in a gevent process: the caller has already run ``gevent.monkey.patch_all()``
and ``grpc.experimental.gevent.init_gevent()`` (see :mod:`frontier.cli`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket as _stdsocket
import ssl
import tempfile
import time
from concurrent import futures
from typing import Any, Callable, Optional, Sequence

import gevent
import grpc
from gevent import socket as gsocket
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from frontier.control.auth import BearerTokens
from frontier.control.grpc_api import SERVICE_NAME, BearerAuthInterceptor, ControlPlaneServicer, ReadinessHealth
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from frontier.control.rest import create_app
from frontier.control.service import ControlService
from frontier.control.store import QueryStore
from frontier.listeners import DeadlineWSGIHandler, GuardedAccept
from frontier.sessions.info import Kicker
from frontier.wire.errors import ConfigError

log = logging.getLogger(__name__)

#: what an HTTP/2 client (every gRPC client) sends first
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"`` or ``":port"`` (all interfaces) to ``(host, port)``."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"controlplane.listen.addr: expected host:port, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


def sniff_http2(sock: gsocket.socket, timeout: float) -> Optional[bool]:
    """Peek at a new connection: True for the HTTP/2 preface, False for anything else.

    ``None`` if the peer closed, failed or stayed silent for ``timeout`` seconds.
    Nothing is consumed from the socket.
    """
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            data = sock.recv(len(HTTP2_PREFACE), _stdsocket.MSG_PEEK)
            if not data:
                return None
            if not HTTP2_PREFACE.startswith(data):
                return False
            if len(data) == len(HTTP2_PREFACE):
                return True
            gevent.sleep(0.005)  # part of the preface so far: let the rest arrive
    except OSError:  # includes socket.timeout
        return None
    finally:
        try:
            sock.settimeout(None)
        except OSError:
            pass


def _pump(src: gsocket.socket, dst: gsocket.socket) -> None:
    """Copy ``src`` to ``dst`` until EOF, then half-close ``dst``; on error, shut both.
    A TLS ``dst`` cannot be half-closed (its shutdown drops the TLS layer under the
    other direction): it is closed whole."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        if isinstance(dst, ssl.SSLSocket):
            dst.close()
        else:
            dst.shutdown(_stdsocket.SHUT_WR)
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(_stdsocket.SHUT_RDWR)
            except OSError:
                pass


class _SniffingWSGIServer(GuardedAccept, WSGIServer):
    """gevent's WSGI server that hands HTTP/2 connections to the gRPC server instead."""

    handler_class = DeadlineWSGIHandler
    #: seconds a request head may take (see :class:`DeadlineWSGIHandler`)
    header_timeout = 10.0
    #: seconds a connection may idle between requests or without progress
    idle_timeout = 60.0

    def __init__(self, listener: tuple[str, int], application: Callable, *, grpc_target: str | tuple[str, int],
                 sniff_timeout: float, tls: Any = None, **kwargs: object) -> None:
        super().__init__(listener, application, **kwargs)  # type: ignore[arg-type]
        self._grpc_target = grpc_target
        self._sniff_timeout = sniff_timeout
        self._tls = tls
        if tls is not None:
            self.environ["wsgi.url_scheme"] = "https"

    def handle(self, sock: gsocket.socket, address: tuple) -> None:  # type: ignore[override]
        try:  # pywsgi writes a response's head and body apart: without this, a keep-alive
            # client's delayed ACK holds every response ~40 ms (Nagle)
            sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP
        if self._tls is not None:
            self._handle_tls(sock, address)
            return
        kind = sniff_http2(sock, self._sniff_timeout)
        if kind is None:
            return
        if kind:
            self._splice_to_grpc(sock, address)
        else:
            super().handle(sock, address)

    def _handle_tls(self, sock: gsocket.socket, address: tuple) -> None:
        """Terminate TLS (within the sniff deadline), then route by ALPN."""
        try:
            conn = self._tls.context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            return
        try:
            with gevent.Timeout(self._sniff_timeout, False):
                conn.do_handshake()
            if conn.cipher() is None:  # the deadline passed
                return
            if conn.selected_alpn_protocol() == "h2":
                self._splice_to_grpc(conn, address)
            else:
                super().handle(conn, address)
        except OSError as exc:  # ssl.SSLError included: a failed handshake
            log.debug("control plane: TLS with %s failed: %s", address, exc)
        finally:
            conn.close()

    def _splice_to_grpc(self, sock: gsocket.socket, address: tuple) -> None:
        target = self._grpc_target
        family = _stdsocket.AF_UNIX if isinstance(target, str) else _stdsocket.AF_INET
        upstream = gsocket.socket(family, _stdsocket.SOCK_STREAM)
        back: Optional[gevent.Greenlet] = None
        try:
            upstream.settimeout(5.0)
            upstream.connect(target)
            upstream.settimeout(None)
            back = gevent.spawn(_pump, upstream, sock)
            _pump(sock, upstream)
            back.join()
        except OSError as exc:
            log.warning("control plane: cannot reach the internal gRPC server for %s: %s", address, exc)
        finally:
            if back is not None:
                back.kill(block=False)
            upstream.close()


class OnePortServer:
    """REST and gRPC on one port: a gRPC server behind a private socket, a sniffing
    WSGI front for both, and ``grpc.health.v1`` fed by ``ready``. Subclasses name
    their app and gRPC services (:class:`ControlPlane`, Frontlas' cluster API)."""

    #: seconds a new connection may take to show whether it speaks HTTP/2 or HTTP/1,
    #: and to send a whole HTTP/1 request head (``limits.http_header_timeout``)
    sniff_timeout = 10.0
    #: seconds a connection may idle between requests or without progress; also gRPC's
    #: ``max_connection_idle``, which ends HTTP/2 connections that carry no call
    #: (``limits.http_idle_timeout``)
    idle_timeout = 60.0
    #: connections open at once on the port; more are closed at accept
    #: (``limits.max_http_connections``)
    max_connections = 1024
    #: seconds :meth:`stop` lets open requests finish before killing them
    stop_timeout = 2.0
    #: greenlets running gRPC handlers at once
    grpc_workers = 32
    #: seconds between readiness polls that feed gRPC health ``Watch`` streams
    health_interval = 1.0
    #: what the server is called in logs
    title = "control plane"
    #: prefix of its thread names and private socket directory
    prefix = "frontier-cp"
    #: logger names of the HTTP access and error logs
    access_logger, error_logger = "frontier.control.access", "frontier.control.http"
    #: the ``grpc.health.v1`` servicer class
    health_class: type[ReadinessHealth] = ReadinessHealth

    def __init__(self, *, listen: str, ready: Callable[[], bool] = lambda: True, tls: Any = None,
                 limits: Any = None) -> None:
        """``limits``: a config ``limits`` section with ``http_header_timeout``,
        ``http_idle_timeout`` and ``max_http_connections`` (None: the class defaults)."""
        if limits is not None:
            self.sniff_timeout = limits.http_header_timeout
            self.idle_timeout = limits.http_idle_timeout
            self.max_connections = limits.max_http_connections
        self._listen = parse_listen(listen)
        self._ready = ready
        self._tls = tls
        self._http: Optional[_SniffingWSGIServer] = None
        self._grpc: Optional[grpc.Server] = None
        self._health: Optional[ReadinessHealth] = None
        self._poller: Optional[gevent.Greenlet] = None
        self._tmpdir: Optional[str] = None
        self._executor: Optional[futures.ThreadPoolExecutor] = None

    # -- what subclasses define ------------------------------------------------------

    def _app(self) -> Callable:
        """The WSGI app serving REST."""
        raise NotImplementedError

    def _add_services(self, server: grpc.Server) -> tuple[str, ...]:
        """Add the gRPC servicers; return their full names for reflection."""
        raise NotImplementedError

    def _interceptors(self) -> list[Any]:
        """gRPC server interceptors (auth, say)."""
        return []

    def _describe(self) -> str:
        """Extra words for the start-up log line."""
        return ""

    # -- life ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; meaningful after :meth:`start`."""
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__}.address: not started")
        host, port = self._http.address[:2]
        return host, port

    def start(self) -> None:
        """Bind the port and serve in background greenlets; returns at once."""
        if self._http is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        grpc_target = self._start_grpc()
        self._http = _SniffingWSGIServer(
            self._listen,
            self._app(),
            grpc_target=grpc_target,
            sniff_timeout=self.sniff_timeout,
            tls=self._tls,
            spawn=Pool(),
            log=logging.getLogger(self.access_logger),
            error_log=logging.getLogger(self.error_logger),
        )
        self._http.header_timeout = self.sniff_timeout
        self._http.idle_timeout = self.idle_timeout
        self._http.max_open = self.max_connections
        self._http.port_name = self.title
        try:
            self._http.start()
        except BaseException:
            self._http = None
            self._stop_grpc()
            raise
        self._poller = gevent.spawn(self._poll_health)
        log.info("%s (REST + gRPC) listening on %s:%d%s%s", self.title, *self.address, self._describe(),
                 ", TLS" if self._tls is not None else "")

    def stop(self) -> None:
        """Stop accepting, end open connections (after :attr:`stop_timeout`), free the port."""
        if self._poller is not None:
            self._poller.kill(block=False)
            self._poller = None
        if self._health is not None:
            self._health.enter_graceful_shutdown()  # health watchers see NOT_SERVING first
        if self._http is not None:
            self._http.stop(timeout=self.stop_timeout)
            self._http = None
        self._stop_grpc()

    # -- internals -----------------------------------------------------------------

    def _start_grpc(self) -> str | tuple[str, int]:
        self._executor = futures.ThreadPoolExecutor(
            max_workers=self.grpc_workers, thread_name_prefix=f"{self.prefix}-grpc"
        )  # under monkey-patching its "threads" are greenlets on the hub's thread
        server = grpc.server(self._executor, interceptors=self._interceptors(),
                             options=[("grpc.max_connection_idle_ms", int(self.idle_timeout * 1000))])
        names = self._add_services(server)
        self._health = self.health_class(self._ready)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        target: str | tuple[str, int]
        path = None
        if hasattr(_stdsocket, "AF_UNIX"):
            self._tmpdir = tempfile.mkdtemp(prefix=f"{self.prefix}-")
            path = os.path.join(self._tmpdir, "grpc.sock")
        if path is not None and len(path) < 100:
            server.add_insecure_port(f"unix:{path}")
            target = path
        else:
            port = server.add_insecure_port("127.0.0.1:0")
            target = ("127.0.0.1", port)
        server.start()
        self._grpc = server
        return target

    def _stop_grpc(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=self.stop_timeout).wait(self.stop_timeout + 1)
            self._grpc = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _poll_health(self) -> None:
        assert self._health is not None
        while True:
            gevent.sleep(self.health_interval)
            self._health.refresh()


class ControlPlane(OnePortServer):
    """REST + gRPC control plane on one port (30010 by default, as in Go).

    ``store`` answers the queries, ``kicker`` forces connections off,
    ``bearer_tokens`` (empty: no auth) guard everything but ``/healthz``,
    ``/readyz``, ``/metrics`` and the gRPC health service, and ``ready`` drives
    ``/readyz`` and gRPC health. ``tls`` (a :class:`frontier.tls.ServerTLS` built
    with ALPN ``h2`` and ``http/1.1``, or None) turns TLS on for the port. ``apps``
    (a :class:`~frontier.control.service.AppsAPI`, or None) serves ``/v1/apps``.
    """

    def __init__(
        self,
        *,
        listen: str,
        store: QueryStore,
        kicker: Kicker,
        bearer_tokens: Sequence[str] = (),
        ready: Callable[[], bool] = lambda: True,
        tls: Any = None,
        limits: Any = None,
        apps: Any = None,
    ) -> None:
        super().__init__(listen=listen, ready=ready, tls=tls, limits=limits)
        self._service = ControlService(store, kicker, apps)
        self._tokens = BearerTokens(bearer_tokens)

    def _app(self) -> Callable:
        return create_app(self._service, tokens=self._tokens, ready=self._ready)

    def _interceptors(self) -> list[Any]:
        return [BearerAuthInterceptor(self._tokens)]

    def _add_services(self, server: grpc.Server) -> tuple[str, ...]:
        pb_grpc.add_ControlPlaneServicer_to_server(ControlPlaneServicer(self._service), server)
        return (SERVICE_NAME,)

    def _describe(self) -> str:
        return f", auth {'on' if self._tokens.enabled else 'off'}"
