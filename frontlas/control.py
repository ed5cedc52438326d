"""The cluster API's one listening port (40011): REST and gRPC together.

The same arrangement as frontier's control plane (:mod:`frontier.control.server`,
whose connection sniffer this reuses): a connection that opens with the HTTP/2
preface is spliced to a private gRPC server, anything else is served by the Flask
app. gRPC serves ``controlplane.ClusterService``, Go's ``controlplane.Health``, the
standard ``grpc.health.v1.Health`` and reflection.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket as _stdsocket
import tempfile
from concurrent import futures
from typing import Callable, Optional

import gevent
import grpc
from gevent.pool import Pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from frontier.control.grpc_api import ReadinessHealth
from frontier.control.server import _SniffingWSGIServer, parse_listen

from .api import ClusterAPI
from .grpc_api import HEALTH_NAME, SERVICE_NAME, ClusterServicer, GoHealthServicer
from .proto import cluster_pb2_grpc as pb_grpc
from .rest import create_app

log = logging.getLogger("frontlas.control")


class _ReadinessHealth(ReadinessHealth):
    """``grpc.health.v1`` for the whole server and the cluster service."""

    SERVICES = ("", SERVICE_NAME)


class ClusterControlPlane:
    """REST + gRPC cluster API on one port; ``ready`` drives the health answers."""

    #: seconds a new connection may take to show whether it speaks HTTP/2 or HTTP/1
    sniff_timeout = 10.0
    #: seconds :meth:`stop` lets open requests finish
    stop_timeout = 2.0
    #: greenlets running gRPC handlers at once
    grpc_workers = 32
    #: seconds between readiness polls feeding ``grpc.health.v1`` watchers
    health_interval = 1.0

    def __init__(self, *, listen: str, api: ClusterAPI, ready: Callable[[], bool]) -> None:
        self._listen = parse_listen(listen)
        self._api = api
        self._ready = ready
        self._http: Optional[_SniffingWSGIServer] = None
        self._grpc: Optional[grpc.Server] = None
        self._health: Optional[_ReadinessHealth] = None
        self._poller: Optional[gevent.Greenlet] = None
        self._executor: Optional[futures.ThreadPoolExecutor] = None
        self._tmpdir: Optional[str] = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        assert self._http is not None
        host, port = self._http.address[:2]
        return host, port

    def start(self) -> None:
        """Bind and serve in background greenlets."""
        target = self._start_grpc()
        app = create_app(self._api, ready=self._ready)
        self._http = _SniffingWSGIServer(
            self._listen, app, grpc_target=target, sniff_timeout=self.sniff_timeout, spawn=Pool(),
            log=logging.getLogger("frontlas.access"), error_log=logging.getLogger("frontlas.http"),
        )
        try:
            self._http.start()
        except BaseException:
            self._http = None
            self._stop_grpc()
            raise
        self._poller = gevent.spawn(self._poll_health)
        log.info("cluster API (REST + gRPC) on %s:%d", *self.address)

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._poller is not None:
            self._poller.kill(block=False)
            self._poller = None
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._http is not None:
            self._http.stop(timeout=self.stop_timeout)
            self._http = None
        self._stop_grpc()

    def _start_grpc(self) -> str | tuple[str, int]:
        self._executor = futures.ThreadPoolExecutor(max_workers=self.grpc_workers, thread_name_prefix="frontlas-grpc")
        server = grpc.server(self._executor)
        pb_grpc.add_ClusterServiceServicer_to_server(ClusterServicer(self._api), server)
        pb_grpc.add_HealthServicer_to_server(GoHealthServicer(self._ready), server)
        self._health = _ReadinessHealth(self._ready)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, HEALTH_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        target: str | tuple[str, int]
        path = None
        if hasattr(_stdsocket, "AF_UNIX"):
            self._tmpdir = tempfile.mkdtemp(prefix="frontlas-cp-")
            path = os.path.join(self._tmpdir, "grpc.sock")
        if path is not None and len(path) < 100:
            server.add_insecure_port(f"unix:{path}")
            target = path
        else:
            target = ("127.0.0.1", server.add_insecure_port("127.0.0.1:0"))
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
