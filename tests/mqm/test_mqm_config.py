"""The mqm section: Go Frontier's YAML keys, validated with messages that name the key."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from frontier.mqm import build_sinks
from frontier.mqm.config import MQMConfig, parse_mqm
from frontier.wire.errors import ConfigError

#: the mqm part of Go Frontier's etc/frontier_all.yaml, every key at its zero value
GO_ALL = """
mqm:
  amqp:
    addrs: null
    channel_max: 0
    enable: false
    exchanges: null
    frame_size: 0
    heartbeat: 0
    locale: ""
    producer:
      app_id: ""
      content_encoding: ""
      content_type: ""
      delivery_mode: 0
      exchange: ""
      expiration: ""
      headers: null
      immediate: false
      mandatory: false
      priority: 0
      reply_to: ""
      routing_keys: null
      type: ""
      user_id: ""
    queueBindings: null
    queues: null
    vhost: ""
  kafka:
    addrs: null
    enable: false
    producer:
      async: false
      compression: none
      compression_level: 0
      flush:
        bytes: 0
        frequency: 0
        max_messages: 0
        messages: 0
      idempotent: false
      max_message_bytes: 0
      required_acks: 0
      retry:
        backoff: 0
        max: 0
      timeout: 0
      topics: null
  nats:
    addrs: null
    enable: false
    jetstream:
      enable: false
      name: ""
      producer:
        subjects: null
    producer:
      subjects: null
  nsq:
    addrs: null
    enable: false
    producer:
      topics: null
  redis:
    addrs: null
    db: 0
    enable: false
    password: ""
    producer:
      channels: null
"""

FULL = """
mqm:
  kafka:
    enable: true
    addrs: ["k1:9092", "k2:9092"]
    producer:
      topics: [telemetry, alerts]
      required_acks: 1
      compression: gzip
      timeout: 5
      idepotent: true          # Go's YAML tag spells it so
      retry: {max: 5, backoff: 1}
      flush: {bytes: 65536}
  amqp:
    enable: true
    addrs: ["guest:guest@rabbit:5672"]
    vhost: /frontier
    heartbeat: 30
    exchanges:
      - {name: edges, kind: topic, durable: true}
    queues:
      - {name: q1, durable: true, exclustive: false}
    queuebindings:             # Go's yaml.v2 default key for QueueBindings
      - {queue_name: q1, exchange_name: edges, binding_key: "telemetry.#"}
    producer:
      exchange: edges
      routing_keys: [telemetry.cpu]
      delivery_mode: 2
      priority: 5
      expiration: 60000
      headers: {x-gateway: g1, x-n: 3}
    pool_size: 16
  nats:
    enable: true
    addrs: ["nats://n1:4222", "n2:4222"]
    producer:
      subjects: [events.a, events.b]
    jetstream:
      enable: true
      name: EDGE
      producer:
        subjects: [events.b, durable.c]
  nsq:
    enable: true
    addrs: ["nsqd:4150"]
    producer:
      topics: [logs]
  redis:
    enable: true
    addrs: ["redis:6379"]
    db: 2
    password: secret
    producer:
      channels: [chat]
      stream: true
      stream_maxlen: 100000
"""


def parse(text: str) -> tuple[MQMConfig, list[str]]:
    warnings: list[str] = []
    raw = yaml.safe_load(textwrap.dedent(text))
    return parse_mqm(raw["mqm"] if raw else None, warnings.append), warnings


def test_go_frontier_all_yaml_parses_with_no_warnings_and_everything_off():
    config, warnings = parse(GO_ALL)
    assert warnings == []
    assert config == MQMConfig()
    assert config.kafka.producer.required_acks == -1  # Go's 0 means "default": all
    assert build_sinks(config) == []


def test_missing_section_is_all_disabled():
    assert parse_mqm(None, print) == MQMConfig()


def test_a_full_config_keeps_every_value():
    config, warnings = parse(FULL)
    k = config.kafka
    assert k.enable and k.addrs == ("k1:9092", "k2:9092")
    assert k.producer.topics == ("telemetry", "alerts") and k.producer.required_acks == 1
    assert k.producer.compression == "gzip" and k.producer.idempotent and k.producer.timeout == 5
    assert (k.producer.retry.max, k.producer.retry.backoff, k.producer.flush.bytes) == (5, 1, 65536)
    a = config.amqp
    assert a.vhost == "/frontier" and a.heartbeat == 30 and a.pool_size == 16
    assert a.exchanges[0].name == "edges" and a.exchanges[0].kind == "topic" and a.exchanges[0].durable
    assert a.queues[0].name == "q1" and a.queues[0].durable and not a.queues[0].exclusive
    assert a.queue_bindings[0].binding_key == "telemetry.#"
    assert a.producer.routing_keys == ("telemetry.cpu",) and a.producer.expiration == "60000"
    assert dict(a.producer.headers) == {"x-gateway": "g1", "x-n": 3}
    n = config.nats
    assert n.jetstream.enable and n.jetstream.name == "EDGE"
    assert n.jetstream.producer.subjects == ("events.b", "durable.c")
    assert config.nsq.producer.topics == ("logs",)
    r = config.redis
    assert (r.db, r.password, r.producer.stream, r.producer.stream_maxlen) == (2, "secret", True, 100000)
    assert warnings == []


def test_config_is_frozen():
    config, _ = parse(FULL)
    with pytest.raises(Exception):
        config.kafka.enable = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "snippet, key",
    [
        ("mqm: [1, 2]", "mqm: expected a mapping"),
        ("mqm: {kafka: {enable: maybe}}", "mqm.kafka.enable"),
        ("mqm: {kafka: {enable: true, producer: {topics: [t]}}}", "mqm.kafka.addrs"),
        ("mqm: {kafka: {addrs: 'k:9092'}}", "mqm.kafka.addrs"),
        ("mqm: {kafka: {addrs: [nohostport]}}", "mqm.kafka.addrs[0]"),
        ("mqm: {kafka: {addrs: ['k:99999']}}", "mqm.kafka.addrs[0]"),
        ("mqm: {kafka: {producer: {required_acks: 2}}}", "mqm.kafka.producer.required_acks"),
        ("mqm: {kafka: {producer: {compression: brotli}}}", "mqm.kafka.producer.compression"),
        ("mqm: {kafka: {producer: {topics: ['has space']}}}", "mqm.kafka.producer.topics[0]"),
        ("mqm: {kafka: {producer: {timeout: '10s'}}}", "mqm.kafka.producer.timeout"),
        ("mqm: {kafka: {producer: {retry: {max: -1}}}}", "mqm.kafka.producer.retry.max"),
        ("mqm: {amqp: {addrs: ['http://x:1']}}", "mqm.amqp.addrs[0]"),
        ("mqm: {amqp: {exchanges: [{name: x, kind: weird}]}}", "mqm.amqp.exchanges[0].kind"),
        ("mqm: {amqp: {exchanges: [{kind: topic}]}}", "mqm.amqp.exchanges[0].name"),
        ("mqm: {amqp: {queues: [{name: q, durable: 'yes'}]}}", "mqm.amqp.queues[0].durable"),
        ("mqm: {amqp: {queueBindings: [{exchange_name: x}]}}", "mqm.amqp.queueBindings[0].queue_name"),
        ("mqm: {amqp: {producer: {priority: 12}}}", "mqm.amqp.producer.priority"),
        ("mqm: {amqp: {producer: {delivery_mode: persistent}}}", "mqm.amqp.producer.delivery_mode"),
        ("mqm: {amqp: {producer: {expiration: 1m}}}", "mqm.amqp.producer.expiration"),
        ("mqm: {amqp: {producer: {headers: [a, b]}}}", "mqm.amqp.producer.headers"),
        ("mqm: {amqp: {pool_size: 0}}", "mqm.amqp.pool_size"),
        ("mqm: {nats: {enable: true, addrs: ['n:4222'], jetstream: {enable: true}}}", "mqm.nats.jetstream.name"),
        ("mqm: {nats: {producer: {subjects: ['a..b']}}}", "mqm.nats.producer.subjects[0]"),
        ("mqm: {nsq: {producer: {topics: ['a/b']}}}", "mqm.nsq.producer.topics[0]"),
        ("mqm: {redis: {db: -1}}", "mqm.redis.db"),
        ("mqm: {redis: {producer: {channels: chat}}}", "mqm.redis.producer.channels"),
        ("mqm: {redis: {producer: {channels: [chat, 3]}}}", "mqm.redis.producer.channels[1]"),
        ("mqm: {redis: {producer: {stream: 1}}}", "mqm.redis.producer.stream"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_key(snippet, key):
    with pytest.raises(ConfigError) as info:
        parse(snippet)
    assert key in str(info.value), str(info.value)


def test_ignored_keys_are_warned_about_with_their_path():
    _, warnings = parse(
        """
        mqm:
          kafka:
            enable: true
            addrs: ["k:9092"]
            producer: {topics: [t], async: true, flush: {messages: 10}}
          redis: {producer: {stream_maxlen: 5}}
          nats: {jetstream: {enable: true, name: S}}
        """
    )
    text = "\n".join(warnings)
    assert "mqm.kafka.producer.async: ignored" in text
    assert "mqm.kafka.producer.flush.messages: not supported" in text
    assert "mqm.redis.producer.stream_maxlen: ignored" in text
    assert "mqm.nats.jetstream.enable: ignored because mqm.nats.enable is false" in text


@pytest.mark.parametrize(("text", "message"), [
    ("mqm: {kafka: {producer: {topics: [t], topicz: [x]}}}", "mqm.kafka.producer.topicz: unknown key (did you mean 'topics'?)"),
    ("mqm: {rabbit: {}}", "mqm.rabbit: unknown key (known keys here: amqp, kafka, nats, nsq, redis)"),
])
def test_unknown_keys_are_refused_with_the_nearest_known_one(text, message):
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value) == message


def test_an_enabled_broker_with_no_topics_is_warned_about():
    _, warnings = parse("mqm: {redis: {enable: true, addrs: ['r:6379']}}")
    assert any("mqm.redis.producer.channels: empty" in w for w in warnings)
