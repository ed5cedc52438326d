"""One Frontlas process: the frontier plane, the cluster API and the Redis store.

``Frontlas(config).start()`` connects to Redis (a Redis that is down at start is
not fatal: answers fail with 503/UNAVAILABLE until it is back), binds both ports
and returns; ``stop()`` closes them. Frontlas keeps no state of its own: stopping
it, or running two, loses nothing. Run under a gevent-patched process (the CLI
patches before importing this module).
"""

from __future__ import annotations

import logging
from typing import Any

from gevent.event import Event

from .api import ClusterAPI
from .config import FrontlasConfig
from .control import ClusterControlPlane
from .plane import FrontierPlane
from .store import ClusterStore, redis_from_config

log = logging.getLogger("frontlas.server")


class Frontlas:
    """What ``frontlas-gevent serve`` runs."""

    def __init__(self, config: FrontlasConfig, *, redis_client: Any = None) -> None:
        self.config = config
        self.redis = redis_client if redis_client is not None else redis_from_config(config.redis)
        self.store = ClusterStore(self.redis, config.frontier_plane.expiration, prefix=config.redis.key_prefix)
        self.api = ClusterAPI(self.store)
        self.plane = FrontierPlane(self.store, config)
        self.control = ClusterControlPlane(listen=config.control_plane.listen.addr, api=self.api, ready=self.ready,
                                           limits=config.limits)
        self._stopped = Event()
        self._stopping = False

    def start(self) -> None:
        """Bind both ports and serve in background greenlets."""
        if not self.store.ping():
            log.warning("Redis (%s) does not answer yet; answering 503 until it does", self.config.redis.mode)
        self.plane.start()
        self.control.start()

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
        try:
            self.redis.close()
        except Exception:
            log.debug("closing the Redis client failed", exc_info=True)
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` finished."""
        return self._stopped.wait(timeout)
