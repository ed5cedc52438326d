"""One Frontlas process: the frontier plane, the cluster API and the Redis store.

``Frontlas(config).start()`` connects to Redis (a Redis that is down at start is
not fatal: answers fail with 503/UNAVAILABLE until it is back), binds both ports
(and the observability listener, 9092 by default, as in Go) and returns; ``stop()`` closes them. Frontlas keeps no state of its own: stopping
it, or running two, loses nothing. Run under a gevent-patched process (the CLI
patches before importing this module).
"""

from __future__ import annotations

import logging
from typing import Any

from gevent.event import Event

from frontier.control.observability import ObservabilityServer

from .api import ClusterAPI
from .config import FrontlasConfig
from .control import ClusterControlPlane
from .metrics import frontlas_registry
from .plane import FrontierPlane
from .rest import NOT_READY
from .store import ClusterStore, redis_from_config

log = logging.getLogger("frontlas.server")


class Frontlas:
    """What ``frontlas-gevent serve`` runs."""

    def __init__(self, config: FrontlasConfig, *, redis_client: Any = None) -> None:
        self.config = config
        self.redis = redis_client if redis_client is not None else redis_from_config(config.redis)
        #: what /metrics serves (:mod:`frontlas.metrics`)
        self.registry, redis_stats = frontlas_registry(lambda: self.store.frontiers(),
                                                       lambda: len(self.plane.dispatcher.sessions))
        self.store = ClusterStore(self.redis, config.frontier_plane.expiration, prefix=config.redis.key_prefix,
                                  timed=redis_stats.timed)
        self.api = ClusterAPI(self.store)
        self.plane = FrontierPlane(self.store, config)
        self.control = ClusterControlPlane(listen=config.control_plane.listen.addr, api=self.api, ready=self.ready,
                                           registry=self.registry, limits=config.limits)
        #: Go's /healthz, /readyz, /metrics listener (``observability``, 9092), when on
        self.observability: ObservabilityServer | None = None
        if config.observability.enable:
            self.observability = ObservabilityServer(config.observability.addr, ready=self.ready,
                                                     registry=self.registry, not_ready=NOT_READY, limits=config.limits)
        self._stopped = Event()
        self._stopping = False

    def start(self) -> None:
        """Bind both ports and serve in background greenlets."""
        if not self.store.ping():
            log.warning("Redis (%s) does not answer yet; answering 503 until it does", self.config.redis.mode)
        self.plane.start()
        self.control.start()
        if self.observability is not None:
            self.observability.start()

    def ready(self) -> bool:
        """True while the frontier plane listens and Redis answers."""
        return not self._stopping and self.plane.serving and self.store.ping()

    def stop(self) -> None:
        """Close both ports and the frontier connections. Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        self.plane.stop()
        self.control.stop()
        if self.observability is not None:
            self.observability.stop()
        try:
            self.redis.close()
        except Exception:
            log.debug("closing the Redis client failed", exc_info=True)
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` finished."""
        return self._stopped.wait(timeout)
