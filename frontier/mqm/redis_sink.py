"""Redis sink: ``PUBLISH channel data``, or ``XADD`` into a stream for durability.

``PUBLISH`` is Go Frontier's behaviour: Redis acknowledges by answering with the
number of subscribers that got the message, which may be 0 (then nobody ever sees
it). Pub/sub has no headers, so the edge id, topic and address are not carried;
the message is the edge's bytes, unchanged.

With ``mqm.redis.producer.stream: true`` each message is appended to the stream
named like the channel with fields ``data``, ``frontier-edge-id``,
``frontier-topic`` and ``frontier-addr``; Redis answers with the entry id once the
entry exists, and a consumer group can read it later. ``stream_maxlen`` trims the
stream approximately (``MAXLEN ~``).
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from frontier.mqm.base import HEADER_ADDR, HEADER_EDGE_ID, HEADER_TOPIC, Deadline, SinkBase
from frontier.mqm.config import RedisConfig


class RedisSink(SinkBase):
    """PUBLISH (or XADD) through a ``redis.BlockingConnectionPool`` of ``pool_size``."""

    broker = "redis"

    def __init__(self, config: RedisConfig) -> None:
        host, _, port = config.addrs[0].rpartition(":")
        super().__init__(config.producer.channels, f"redis://{host}:{port}/{config.db}")
        self.config = config
        self._pool = redis.BlockingConnectionPool(
            host=host,
            port=int(port),
            db=config.db,
            password=config.password or None,
            max_connections=config.pool_size,
            # waiting for a free connection and every socket operation are bounded by
            # the produce's deadline (a gevent.Timeout in SinkBase); these are backstops
            timeout=None,
            socket_connect_timeout=10,
            socket_timeout=30,
            # one retry, on a broken connection only: a pooled socket that died with a
            # Redis restart is replaced at once; a timeout is never retried (no dupes)
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            client_name="frontier-gevent",
        )
        self._client = redis.Redis(connection_pool=self._pool)

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        producer = self.config.producer
        if producer.stream:
            fields = {"data": data, HEADER_EDGE_ID: str(edge_id), HEADER_TOPIC: topic, HEADER_ADDR: addr}
            self._client.xadd(topic, fields, maxlen=producer.stream_maxlen or None, approximate=True)
        else:
            self._client.publish(topic, data)

    def _probe(self, deadline: Deadline) -> None:
        self._client.ping()

    def _shutdown(self) -> None:
        self._pool.disconnect(inuse_connections=True)
