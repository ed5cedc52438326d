"""The same apps on every node: a durable, ordered log of app changes in a Redis Stream.

Every change made through a node's control plane is appended (``XADD``) to
``<key_prefix>ingress:apps`` as ``op`` (``put`` or ``delete``) and ``app`` (the
app's JSON), then applied locally at once (read-your-writes). One greenlet per node
reads the stream in order (``XREAD BLOCK``) from the last id it applied and applies
each entry; a node that starts replays from the beginning, and one that lost Redis
resumes from its last id, so every node converges without a restart. Applying is
idempotent (an app equal to the current one changes nothing), so a node applying
its own entry a second time is harmless. The file's ``ingress.apps`` are each node's
starting point; the log is applied over them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import gevent
import redis

from frontier.config import IngressRedis, parse_addr, parse_app
from frontier.wire.errors import BrokerUnavailable, ConfigError

from .apps import AppStore

log = logging.getLogger("frontier.ingress.cluster")


class AppLog:
    """Publishes app changes to the stream and applies the stream to an :class:`AppStore`."""

    #: milliseconds one XREAD waits for new entries
    block_ms = 2000
    #: entries read per XREAD (then the greenlet yields)
    batch = 100
    #: seconds between reconnect attempts while Redis is unreachable
    retry_every = 1.0

    def __init__(self, cfg: IngressRedis, store: AppStore) -> None:
        host, port = parse_addr(cfg.addr, "ingress.redis.addr")
        common = dict(host=host, port=port, db=cfg.db, username=cfg.username or None, password=cfg.password or None,
                      decode_responses=True, socket_connect_timeout=2.0)
        self.key = f"{cfg.key_prefix}ingress:apps"
        self._writer = redis.Redis(socket_timeout=3.0, **common)
        self._reader = redis.Redis(socket_timeout=self.block_ms / 1000 + 3.0, **common)
        self.store = store
        #: the id of the last entry applied ("0-0": none yet)
        self.last_id = "0-0"
        self._greenlet: gevent.Greenlet | None = None
        self._healthy = True

    def start(self) -> None:
        """Become the store's publisher and start following the stream."""
        self.store.publisher = self.publish
        self._greenlet = gevent.spawn(self._follow)

    def stop(self) -> None:
        """Stop following (the store keeps what it has)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def publish(self, op: str, app: dict[str, Any]) -> None:
        """Append a change and apply it here; ``BrokerUnavailable`` when Redis does not take it."""
        try:
            entry_id = self._writer.xadd(self.key, {"op": op, "app": json.dumps(app, sort_keys=True)})
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"the cluster's app log (Redis) did not take the change: {exc}") from None
        log.info("app log: %s %s as %s", op, app.get("id"), entry_id)
        self._apply(op, app)

    def _follow(self) -> None:
        while True:
            try:
                answer = self._reader.xread({self.key: self.last_id}, count=self.batch, block=self.block_ms)
                if not self._healthy:
                    log.warning("app log: Redis reachable again; resuming after %s", self.last_id)
                    self._healthy = True
            except redis.RedisError as exc:
                if self._healthy:
                    log.warning("app log: Redis unreachable (%s); retrying every %.0fs from %s", exc, self.retry_every, self.last_id)
                    self._healthy = False
                gevent.sleep(self.retry_every)
                continue
            for _key, entries in answer or ():
                for entry_id, fields in entries:
                    self._apply_entry(entry_id, fields)
                    self.last_id = entry_id
            gevent.sleep(0)

    def _apply_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            self._apply(fields.get("op", ""), json.loads(fields.get("app", "{}")))
        except (ValueError, ConfigError) as exc:  # written by another version, or by hand
            log.error("app log: entry %s skipped: %s", entry_id, exc)

    def _apply(self, op: str, app: dict[str, Any]) -> None:
        if op == "put":
            self.store.apply_put(parse_app(app))
        elif op == "delete":
            self.store.apply_delete(str(app.get("id", "")))
        else:
            raise ConfigError(f"op: unknown operation {op!r}")

    def wait_caught_up(self, timeout: float) -> bool:
        """True once every entry present now was applied (for a start-up that wants the
        cluster's apps before serving); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            if not self._writer.exists(self.key):
                return True  # no change was ever logged
            last = self._writer.xinfo_stream(self.key).get("last-generated-id", "0-0")
        except redis.RedisError:
            return False
        while _id_tuple(self.last_id) < _id_tuple(last):
            if time.monotonic() > deadline:
                return False
            gevent.sleep(0.02)
        return True


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)
