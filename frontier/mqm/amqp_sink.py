"""AMQP 0-9-1 (RabbitMQ) sink, on pika's ``BlockingConnection`` with publisher confirms.

A produce publishes to ``mqm.amqp.producer.exchange`` with the topic as routing
key and returns once the broker confirmed (``Basic.Ack``); a ``Basic.Nack``, or a
``Basic.Return`` when ``mandatory`` is set and no queue is bound, raises
``BrokerUnavailable``. Headers ``frontier-edge-id``, ``frontier-topic`` and
``frontier-addr`` are added to the configured ``producer.headers``; every message
gets a fresh ``message_id`` and a ``timestamp``, like Go Frontier.

pika connections must never be shared between greenlets, so the sink keeps a pool
of ``pool_size`` connections, each with one confirm-mode channel: that many
publishes can wait for their confirms at once. The configured exchanges, queues
and bindings are declared on every new connection (idempotent), so they come back
after a broker restart; a failing declaration is logged and skipped, as in Go.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from frontier.mqm.base import Deadline, MessageRefused, ProbeSkipped, SinkBase
from frontier.mqm.config import AMQPConfig
from frontier.mqm.pool import ConnectionPool
from frontier.wire.errors import BrokerUnavailable

log = logging.getLogger("frontier.mqm")


@dataclass(slots=True)
class _Link:
    """One connection and its confirm-mode channel; used by one greenlet at a time."""

    connection: pika.BlockingConnection
    channel: pika.adapters.blocking_connection.BlockingChannel


def _endpoint(addr: str, vhost: str) -> tuple[dict, str]:
    """pika connection arguments for one ``addrs`` entry, and its credential-free name."""
    parts = urlsplit(addr if "://" in addr else "amqp://" + addr)
    args: dict = {"host": parts.hostname, "port": parts.port or (5671 if parts.scheme == "amqps" else 5672)}
    if parts.username is not None:
        args["credentials"] = pika.PlainCredentials(unquote(parts.username), unquote(parts.password or ""))
    path_vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else ""
    args["virtual_host"] = vhost or path_vhost or "/"
    if parts.scheme == "amqps":
        args["ssl_options"] = pika.SSLOptions(ssl.create_default_context(), parts.hostname)
    return args, f"{parts.scheme}://{args['host']}:{args['port']}/{args['virtual_host'].lstrip('/')}"


class AMQPSink(SinkBase):
    """Publish ``mqm.amqp.producer.routing_keys`` to one exchange, with confirms."""

    broker = "amqp"

    def __init__(self, config: AMQPConfig) -> None:
        endpoints = [_endpoint(addr, config.vhost) for addr in config.addrs]
        super().__init__(config.producer.routing_keys, ",".join(name for _, name in endpoints))
        self.config = config
        common: dict = {"connection_attempts": 1, "client_properties": {"connection_name": "frontier-gevent"}}
        if config.channel_max:
            common["channel_max"] = config.channel_max
        if config.frame_size:
            common["frame_max"] = config.frame_size
        if config.heartbeat:
            common["heartbeat"] = config.heartbeat
        if config.locale:
            common["locale"] = config.locale
        self._endpoints = [{**common, **args} for args, _ in endpoints]
        self._pool: ConnectionPool[_Link] = ConnectionPool(
            f"amqp {self.target}", config.pool_size, self._connect, self._usable, self._dispose
        )

    # -- connections -------------------------------------------------------------------

    def _connect(self, deadline: Deadline) -> _Link:
        wait = max(0.05, deadline.remaining())
        params = [pika.ConnectionParameters(socket_timeout=wait, stack_timeout=wait, **args) for args in self._endpoints]
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"amqp: cannot connect to {self.target}: {exc!r}") from exc
        try:
            channel = self._declare(connection)
            channel.confirm_delivery()
        except BaseException:
            self._pool.discard(_Link(connection, None))  # type: ignore[arg-type]
            raise
        return _Link(connection, channel)

    def _declare(self, connection: pika.BlockingConnection):
        """Declare exchanges, queues and bindings; return an open channel."""
        channel = connection.channel()
        c = self.config
        steps = [
            (
                f"exchange {e.name!r}",
                lambda ch, e=e: ch.exchange_declare(
                    e.name, e.kind, durable=e.durable, auto_delete=e.auto_delete, internal=e.internal
                ),
            )
            for e in c.exchanges
        ]
        steps += [
            (
                f"queue {q.name!r}",
                lambda ch, q=q: ch.queue_declare(q.name, durable=q.durable, exclusive=q.exclusive, auto_delete=q.auto_delete),
            )
            for q in c.queues
        ]
        steps += [
            (
                f"binding of queue {b.queue_name!r} to exchange {b.exchange_name!r} by {b.binding_key!r}",
                lambda ch, b=b: ch.queue_bind(b.queue_name, b.exchange_name, routing_key=b.binding_key),
            )
            for b in c.queue_bindings
        ]
        for what, step in steps:
            try:
                step(channel)
            except pika.exceptions.ChannelClosedByBroker as exc:
                log.warning("amqp sink: declaring %s on %s failed: %s", what, self.target, exc)
                channel = connection.channel()
        return channel

    @staticmethod
    def _usable(link: _Link) -> bool:
        if not (link.connection.is_open and link.channel.is_open):
            return False
        try:
            link.connection.process_data_events(0)  # heartbeats, and notice a dead socket
        except pika.exceptions.AMQPError:
            return False
        return link.connection.is_open and link.channel.is_open

    @staticmethod
    def _dispose(link: _Link) -> None:
        if link.connection.is_open:
            link.connection.close()

    # -- SinkBase ----------------------------------------------------------------------

    def _properties(self, topic: str, edge_id: int, addr: str) -> pika.BasicProperties:
        p = self.config.producer
        return pika.BasicProperties(
            content_type=p.content_type or None,
            content_encoding=p.content_encoding or None,
            headers={**p.headers, **self._headers(topic, edge_id, addr)},
            delivery_mode=p.delivery_mode or None,
            priority=p.priority or None,
            reply_to=p.reply_to or None,
            expiration=p.expiration or None,
            message_id=str(uuid.uuid4()),
            timestamp=int(time.time()),
            type=p.type or None,
            user_id=p.user_id or None,
            app_id=p.app_id or None,
        )

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        properties = self._properties(topic, edge_id, addr)
        link = self._pool.acquire(deadline)
        reusable = False
        try:
            try:
                link.channel.basic_publish(
                    self.config.producer.exchange, topic, data, properties, mandatory=self.config.producer.mandatory
                )
            except pika.exceptions.UnroutableError as exc:
                reusable = True
                raise MessageRefused(
                    f"amqp: no queue bound to exchange {self.config.producer.exchange!r} for routing key {topic!r}"
                ) from exc
            except pika.exceptions.NackError as exc:
                reusable = True
                raise MessageRefused(f"amqp: {self.target} refused (nack) a message for {topic!r}") from exc
            except pika.exceptions.AMQPError as exc:
                raise BrokerUnavailable(f"amqp: publishing {topic!r} to {self.target} failed: {exc!r}") from exc
            reusable = True
        finally:
            # a publish cut short by the deadline leaves the link in an unknown state
            self._pool.release(link, reusable and link.connection.is_open and link.channel.is_open)

    def _probe(self, deadline: Deadline) -> None:
        """Healthy when an idle connection passes a check or a new one opens; a busy
        connection proves nothing (it may be stuck connecting to a peer that never
        speaks AMQP), so with all of them busy the probe is skipped."""
        if self._pool.sweep(self._check):
            return
        link = self._pool.acquire(deadline, wait=False)
        if link is None:
            raise ProbeSkipped()
        self._pool.release(link, True)

    @staticmethod
    def _check(link: _Link) -> None:
        if not AMQPSink._usable(link):
            raise BrokerUnavailable("amqp connection closed")

    def _shutdown(self) -> None:
        self._pool.close()
