"""External MQ sinks: an edge's ``publish(topic, data)`` landing in a broker.

The gateway parses the ``mqm`` config section with :func:`parse_mqm`, builds the
enabled sinks once with :func:`build_sinks` (never blocks: they connect in the
background), routes a publish whose topic a sink claims (``sink.topics``) to
``sink.produce(...)`` from the publishing greenlet, and calls :func:`close_all` on
shutdown. Every sink implements the small :class:`Sink` interface.
"""

from __future__ import annotations

import logging

import gevent.monkey

from frontier.mqm.base import HEADER_ADDR, HEADER_EDGE_ID, HEADER_TOPIC, MessageRefused, Sink, SinkBase, close_all
from frontier.mqm.config import MQMConfig, parse_mqm

__all__ = [
    "HEADER_ADDR",
    "HEADER_EDGE_ID",
    "HEADER_TOPIC",
    "MQMConfig",
    "MessageRefused",
    "Sink",
    "SinkBase",
    "build_sinks",
    "close_all",
    "parse_mqm",
]


def build_sinks(config: MQMConfig) -> list[Sink]:
    """One started sink per enabled broker, in Go Frontier's order.

    Returns at once: each sink connects in the background and reconnects by itself.
    NATS gives up to two sinks: ``jetstream`` for the JetStream subjects and
    ``nats`` for the core subjects JetStream does not list.
    Must run in the gevent-patched gateway process.
    """
    sinks: list[SinkBase] = []
    if config.amqp.enable:
        from frontier.mqm.amqp_sink import AMQPSink

        sinks.append(AMQPSink(config.amqp))
    if config.kafka.enable:
        from frontier.mqm.kafka_sink import KafkaSink

        sinks.append(KafkaSink(config.kafka))
    if config.nsq.enable:
        from frontier.mqm.nsq_sink import NSQSink

        sinks.append(NSQSink(config.nsq))
    if config.nats.enable:
        from frontier.mqm.nats_sink import NatsSink

        js = config.nats.jetstream
        core = config.nats.producer.subjects
        if js.enable:
            sinks.append(NatsSink(config.nats, js.producer.subjects, jetstream=True))
            core = tuple(s for s in core if s not in js.producer.subjects)
        if core or not js.enable:
            sinks.append(NatsSink(config.nats, core))
    if config.redis.enable:
        from frontier.mqm.redis_sink import RedisSink

        sinks.append(RedisSink(config.redis))
    if sinks and not gevent.monkey.is_module_patched("socket"):
        logging.getLogger("frontier.mqm").warning(
            "mqm sinks built without gevent.monkey.patch_all(): broker I/O will block the whole thread"
        )
    for sink in sinks:
        sink.start()
    return list(sinks)
