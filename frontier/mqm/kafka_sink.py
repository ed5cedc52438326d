"""Kafka sink, on kafka-python's ``KafkaProducer``.

Each message is keyed by the edge id (decimal text) so one edge's messages land in
one partition, in order: the producer keeps one request in flight per broker
connection (or uses idempotence when ``idempotent: true``), so retries cannot
reorder. Headers ``frontier-edge-id``, ``frontier-topic`` and ``frontier-addr``
carry the origin. A produce returns once the broker acknowledged with
``required_acks`` (all in-sync replicas by default).

The producer is built lazily (building it contacts the cluster) by the health
watcher or the first produce, whichever comes first, and then reconnects by itself.
Under ``gevent.monkey.patch_all()`` its sender thread is a greenlet. While the
cluster is unreachable a produce fails at once with ``BrokerUnavailable`` (nothing
is queued); a broker that accepts connections but does not answer gives a
``Timeout``, after which the record may still be delivered (at-least-once).
"""

from __future__ import annotations

import selectors
import socket

import gevent
import gevent.lock
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from frontier.mqm.base import Deadline, MessageRefused, SinkBase
from frontier.mqm.config import KafkaConfig
from frontier.wire.errors import BrokerUnavailable, Timeout


class KafkaSink(SinkBase):
    """Produce to the topics of ``mqm.kafka.producer.topics``."""

    broker = "kafka"
    #: longest a first connection (bootstrap) may take when nobody waits on it
    bootstrap_timeout: float = 10.0

    def __init__(self, config: KafkaConfig) -> None:
        super().__init__(config.producer.topics, "kafka://" + ",".join(config.addrs))
        self.config = config
        self._producer: KafkaProducer | None = None
        self._building = gevent.lock.Semaphore()

    # -- producer life -----------------------------------------------------------------

    def _settings(self, bootstrap_timeout: float) -> dict:
        p = self.config.producer
        request_timeout_ms = (p.timeout or 10) * 1000
        linger_ms = p.flush.frequency * 1000
        settings = dict(
            bootstrap_servers=list(self.config.addrs),
            client_id="frontier-gevent",
            acks=p.required_acks,
            enable_idempotence=p.idempotent,
            # one request in flight per connection keeps retried batches in order
            max_in_flight_requests_per_connection=5 if p.idempotent else 1,
            retries=p.retry.max or 3,
            retry_backoff_ms=(p.retry.backoff * 1000) or 100,
            request_timeout_ms=request_timeout_ms,
            # expire records soon after their produce gave up, to bound late deliveries
            delivery_timeout_ms=request_timeout_ms + linger_ms,
            linger_ms=linger_ms,
            compression_type=None if p.compression == "none" else p.compression,
            # the produce's deadline bounds send(); this is only a backstop
            max_block_ms=60_000,
            reconnect_backoff_ms=50,
            reconnect_backoff_max_ms=1000,
            bootstrap_timeout_ms=max(1, int(bootstrap_timeout * 1000)),
            # looked up now, not when kafka was imported: gevent's selector once patched
            selector=selectors.DefaultSelector,
        )
        if p.max_message_bytes:
            settings["max_request_size"] = p.max_message_bytes
        if p.flush.bytes:
            settings["batch_size"] = p.flush.bytes
        return settings

    def _get_producer(self, deadline: Deadline) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        if not self._building.acquire(timeout=deadline.remaining()):
            raise Timeout(f"kafka: {self.target} still connecting at the deadline")
        try:
            if self._producer is None:
                if self._closed:
                    raise BrokerUnavailable(f"kafka sink for {self.target} is closed")
                try:
                    self._producer = KafkaProducer(**self._settings(min(deadline.remaining(), self.bootstrap_timeout)))
                except KafkaError as exc:
                    raise BrokerUnavailable(f"kafka: cannot reach {self.target}: {exc}") from exc
            return self._producer
        finally:
            self._building.release()

    def _reachable(self, deadline: Deadline) -> None:
        """Raise ``BrokerUnavailable`` unless some bootstrap address accepts TCP."""
        errors = []
        for addr in self.config.addrs:
            host, _, port = addr.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=max(0.05, deadline.remaining())).close()
                return
            except OSError as exc:
                errors.append(f"{addr}: {exc.strerror or exc}")
        raise BrokerUnavailable(f"kafka: no bootstrap broker reachable ({'; '.join(errors)})")

    # -- SinkBase ----------------------------------------------------------------------

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        if not self._up:
            # fail fast (and queue nothing) while the cluster is known to be down
            self._reachable(deadline)
        producer = self._get_producer(deadline)
        headers = [(k, v.encode()) for k, v in self._headers(topic, edge_id, addr).items()]
        try:
            future = producer.send(topic, value=data, key=str(edge_id).encode(), headers=headers)
            future.get(timeout=max(0.001, deadline.remaining()))
        except KafkaTimeoutError as exc:
            raise Timeout(f"kafka: no ack from {self.target} for topic {topic!r}: {exc}") from exc
        except MessageSizeTooLargeError as exc:
            raise MessageRefused(f"kafka: {self.target} refused a message for {topic!r}: {exc}") from exc
        except KafkaError as exc:
            raise BrokerUnavailable(f"kafka: {self.target} refused topic {topic!r}: {exc}") from exc

    def _probe(self, deadline: Deadline) -> None:
        self._reachable(deadline)
        self._get_producer(deadline)

    def _shutdown(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=2)
