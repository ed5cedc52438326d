"""The ``mqm`` section of the gateway config: external MQs that edge publishes may land in.

The YAML keys are the Go Frontier's (``etc/frontier_all.yaml``) so an existing
``frontier.yaml`` works unchanged. Field names equal the Go YAML keys, except where
the Go key is not a usable Python name (``async`` -> ``async_``) or is a typo or a
case clash in Go; those spellings are still accepted as aliases:

- ``mqm.kafka.producer.idepotent`` (Go's YAML tag) -> ``idempotent``
- ``mqm.amqp.queues[].exclustive`` (Go's YAML tag) -> ``exclusive``
- ``mqm.amqp.queueBindings`` / ``queuebindings`` -> ``queue_bindings``

Keys of our own (documented in ``docs/mq.md``): ``mqm.amqp.pool_size``,
``mqm.nsq.pool_size``, ``mqm.redis.pool_size``, ``mqm.redis.producer.stream`` and
``mqm.redis.producer.stream_maxlen``.

:func:`parse_mqm` refuses a wrong value with :class:`~frontier.wire.errors.ConfigError`
naming the key path, also for an unknown key (naming the nearest known one), and
reports ignored keys through ``warn``.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from frontier.wire.errors import ConfigError

Warn = Callable[[str], None]

#: Kafka topic names: the broker's own rule.
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: NSQ topic names: nsqd's own rule (``protocol.IsValidTopicName``).
_NSQ_TOPIC = re.compile(r"^[.A-Za-z0-9_-]{1,64}(#ephemeral)?$")
#: sarama's compression codec names, as the Go YAML spells them.
_KAFKA_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
_AMQP_KINDS = ("direct", "fanout", "topic", "headers")


# -- kafka ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KafkaFlush:
    """``mqm.kafka.producer.flush``: batching hints (Go/sarama units: bytes, seconds)."""

    bytes: int = 0
    messages: int = 0
    frequency: int = 0
    max_messages: int = 0


@dataclass(frozen=True, slots=True)
class KafkaRetry:
    """``mqm.kafka.producer.retry``: ``max`` attempts (0 = default 3), ``backoff`` seconds."""

    max: int = 0
    backoff: int = 0


@dataclass(frozen=True, slots=True)
class KafkaProducer:
    """``mqm.kafka.producer``.

    ``required_acks`` is normalised: Go's ``0`` (unset) and ``-1`` mean "all in-sync
    replicas" (-1, our default); ``1`` means the partition leader only. Kafka's
    "no response" level is not offered because a produce must return a broker ack.
    ``timeout`` is the broker request timeout in seconds (0 = 10).
    """

    topics: tuple[str, ...] = ()
    async_: bool = False
    max_message_bytes: int = 0
    required_acks: int = -1
    timeout: int = 0
    compression: str = "none"
    compression_level: int = 0
    idempotent: bool = False
    flush: KafkaFlush = field(default_factory=KafkaFlush)
    retry: KafkaRetry = field(default_factory=KafkaRetry)


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """``mqm.kafka``: every address is a bootstrap server (``host:port``)."""

    enable: bool = False
    addrs: tuple[str, ...] = ()
    producer: KafkaProducer = field(default_factory=KafkaProducer)


# -- amqp ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AMQPExchange:
    """One entry of ``mqm.amqp.exchanges``, declared on every new connection."""

    name: str
    kind: str = "direct"
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    nowait: bool = False


@dataclass(frozen=True, slots=True)
class AMQPQueue:
    """One entry of ``mqm.amqp.queues``, declared on every new connection."""

    name: str
    durable: bool = False
    auto_delete: bool = False
    exclusive: bool = False
    nowait: bool = False


@dataclass(frozen=True, slots=True)
class AMQPQueueBinding:
    """One entry of ``mqm.amqp.queueBindings``: bind ``queue_name`` to an exchange."""

    queue_name: str
    exchange_name: str = ""
    binding_key: str = ""
    nowait: bool = False


@dataclass(frozen=True, slots=True)
class AMQPProducer:
    """``mqm.amqp.producer``: where to publish (``exchange`` + topic as routing key)
    and the fixed message properties. ``headers`` are merged under ours."""

    routing_keys: tuple[str, ...] = ()
    exchange: str = ""
    mandatory: bool = False
    immediate: bool = False
    headers: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    content_type: str = ""
    content_encoding: str = ""
    delivery_mode: int = 0
    priority: int = 0
    reply_to: str = ""
    expiration: str = ""
    type: str = ""
    user_id: str = ""
    app_id: str = ""


@dataclass(frozen=True, slots=True)
class AMQPConfig:
    """``mqm.amqp``. ``addrs`` are ``[user:pass@]host[:port][/vhost]`` (``amqp://``
    optional) tried in order; ``pool_size`` (ours) caps concurrent publishes."""

    enable: bool = False
    addrs: tuple[str, ...] = ()
    vhost: str = ""
    channel_max: int = 0
    frame_size: int = 0
    heartbeat: int = 0
    locale: str = ""
    exchanges: tuple[AMQPExchange, ...] = ()
    queues: tuple[AMQPQueue, ...] = ()
    queue_bindings: tuple[AMQPQueueBinding, ...] = ()
    producer: AMQPProducer = field(default_factory=AMQPProducer)
    pool_size: int = 8


# -- nats ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NatsProducer:
    """``producer`` of ``mqm.nats`` or ``mqm.nats.jetstream``: the subjects claimed."""

    subjects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NatsJetStream:
    """``mqm.nats.jetstream``: publish its subjects into stream ``name`` (created if
    missing) and wait for the PubAck."""

    enable: bool = False
    name: str = ""
    producer: NatsProducer = field(default_factory=NatsProducer)


@dataclass(frozen=True, slots=True)
class NatsConfig:
    """``mqm.nats``: ``addrs`` are ``host:port`` or ``nats://host:port``."""

    enable: bool = False
    addrs: tuple[str, ...] = ()
    producer: NatsProducer = field(default_factory=NatsProducer)
    jetstream: NatsJetStream = field(default_factory=NatsJetStream)


# -- nsq -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NSQProducer:
    """``mqm.nsq.producer``: the topics claimed."""

    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NSQConfig:
    """``mqm.nsq``: nsqd TCP addresses (the first is used, as in Go)."""

    enable: bool = False
    addrs: tuple[str, ...] = ()
    producer: NSQProducer = field(default_factory=NSQProducer)
    pool_size: int = 8


# -- redis ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisProducer:
    """``mqm.redis.producer``: channels claimed. ``stream`` (ours) switches from
    ``PUBLISH`` to ``XADD`` into a stream named like the channel; ``stream_maxlen``
    (ours, 0 = unbounded) trims it approximately."""

    channels: tuple[str, ...] = ()
    stream: bool = False
    stream_maxlen: int = 0


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """``mqm.redis``: one Redis (the first address, as in Go)."""

    enable: bool = False
    addrs: tuple[str, ...] = ()
    db: int = 0
    password: str = ""
    producer: RedisProducer = field(default_factory=RedisProducer)
    pool_size: int = 32


@dataclass(frozen=True, slots=True)
class MQMConfig:
    """The whole ``mqm`` section; every broker is disabled by default."""

    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    amqp: AMQPConfig = field(default_factory=AMQPConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    nsq: NSQConfig = field(default_factory=NSQConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)


# -- parsing -------------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Section:
    """Reads one mapping of the YAML tree, remembering which keys were used."""

    def __init__(self, raw: Any, path: str, warn: Warn) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_describe(raw)}")
        for key in raw:
            if not isinstance(key, str):
                raise ConfigError(f"{path}: keys must be strings, got {_describe(key)}")
        self.raw = raw
        self.path = path
        self.warn = warn
        self.used: set[str] = set()
        self.known: set[str] = set()  # every key a reader asked for, present or not

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}"

    def get(self, *keys: str) -> tuple[str, Any]:
        """The value of the first present key among ``keys`` (aliases), or None."""
        found = [k for k in keys if k in self.raw]
        self.used.update(found)
        self.known.update(keys)
        if len(found) > 1:
            self.warn(f"{self.path}: both {found[0]!r} and {found[1]!r} set; using {found[0]!r}")
        if not found:
            return keys[0], None
        return found[0], self.raw[found[0]]

    def bool(self, *keys: str, default: bool = False) -> bool:
        key, value = self.get(*keys)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key_path(key)}: expected true or false, got {_describe(value)}")
        return value

    def int(self, *keys: str, default: int = 0, lo: int | None = 0, hi: int | None = None) -> int:
        key, value = self.get(*keys)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key_path(key)}: expected an integer, got {_describe(value)}")
        if lo is not None and value < lo:
            raise ConfigError(f"{self.key_path(key)}: must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise ConfigError(f"{self.key_path(key)}: must be <= {hi}, got {value}")
        return value

    def str(self, *keys: str, default: str = "") -> str:
        key, value = self.get(*keys)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.key_path(key)}: expected a string, got {_describe(value)}")
        return value

    def strings(self, *keys: str) -> tuple[str, ...]:
        key, value = self.get(*keys)
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{self.key_path(key)}: expected a list of strings, got {_describe(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{self.key_path(key)}[{i}]: expected a non-empty string, got {_describe(item)}")
            if item in out:
                self.warn(f"{self.key_path(key)}[{i}]: duplicate {item!r} ignored")
                continue
            out.append(item)
        return tuple(out)

    def section(self, *keys: str) -> "_Section":
        key, value = self.get(*keys)
        return _Section(value, self.key_path(key), self.warn)

    def sections(self, *keys: str) -> list["_Section"]:
        key, value = self.get(*keys)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{self.key_path(key)}: expected a list of mappings, got {_describe(value)}")
        return [_Section(item, f"{self.key_path(key)}[{i}]", self.warn) for i, item in enumerate(value)]

    def done(self) -> None:
        """Refuse a key that no reader asked for (a typo), naming the nearest known one."""
        from frontier.config import UnknownKey  # frontier.config imports this module

        for key in self.raw:
            if key not in self.used:
                raise UnknownKey(self.key_path(key), key, sorted(self.known))


def _check_hostport(path: str, addr: str, *, schemes: tuple[str, ...] = ()) -> None:
    text = addr
    for scheme in schemes:
        if text.startswith(scheme + "://"):
            text = text[len(scheme) + 3 :]
            break
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{path}: expected host:port, got {addr!r}")


def _addrs(sec: _Section, enabled: bool, *, schemes: tuple[str, ...] = (), first_only: bool = False) -> tuple[str, ...]:
    addrs = sec.strings("addrs")
    for i, addr in enumerate(addrs):
        _check_hostport(f"{sec.path}.addrs[{i}]", addr, schemes=schemes)
    if enabled and not addrs:
        raise ConfigError(f"{sec.path}.addrs: at least one address is required when {sec.path}.enable is true")
    if enabled and first_only and len(addrs) > 1:
        sec.warn(f"{sec.path}.addrs: only the first address ({addrs[0]}) is used, as in Go Frontier")
    return addrs


def _claims(sec: _Section, key: str, enabled: bool) -> tuple[str, ...]:
    names = sec.strings(key)
    if enabled and not names:
        sec.warn(f"{sec.key_path(key)}: empty, so this broker receives nothing")
    return names


def _parse_kafka(sec: _Section) -> KafkaConfig:
    enable = sec.bool("enable")
    addrs = _addrs(sec, enable)
    p = sec.section("producer")
    topics = _claims(p, "topics", enable)
    for i, topic in enumerate(topics):
        if not _KAFKA_TOPIC.match(topic) or topic in (".", ".."):
            raise ConfigError(f"{p.path}.topics[{i}]: {topic!r} is not a valid Kafka topic name ([A-Za-z0-9._-], up to 249)")
    async_ = p.bool("async")
    if async_:
        sec.warn(f"{p.path}.async: ignored; a produce always waits for the broker's ack")
    acks_key, acks_raw = p.get("required_acks")
    if acks_raw is None or acks_raw == 0 or acks_raw == -1 or acks_raw == "all":
        acks = -1
    elif acks_raw == 1:
        acks = 1
    else:
        raise ConfigError(
            f"{p.path}.{acks_key}: expected -1 (all in-sync replicas, the default), 1 (leader only) "
            f"or 0 (unset = all), got {_describe(acks_raw)}"
        )
    compression = p.str("compression", default="none").lower() or "none"
    if compression not in _KAFKA_COMPRESSION:
        raise ConfigError(f"{p.path}.compression: expected one of {', '.join(_KAFKA_COMPRESSION)}, got {compression!r}")
    f = p.section("flush")
    flush = KafkaFlush(
        bytes=f.int("bytes"), messages=f.int("messages"), frequency=f.int("frequency"), max_messages=f.int("max_messages")
    )
    f.done()
    for key in ("messages", "max_messages"):
        if getattr(flush, key):
            sec.warn(f"{f.path}.{key}: not supported by the Python Kafka client, ignored")
    r = p.section("retry")
    retry = KafkaRetry(max=r.int("max"), backoff=r.int("backoff"))
    r.done()
    producer = KafkaProducer(
        topics=topics,
        async_=async_,
        max_message_bytes=p.int("max_message_bytes"),
        required_acks=acks,
        timeout=p.int("timeout"),
        compression=compression,
        compression_level=p.int("compression_level", lo=None),
        idempotent=p.bool("idempotent", "idepotent"),
        flush=flush,
        retry=retry,
    )
    if producer.compression_level:
        sec.warn(f"{p.path}.compression_level: not supported by the Python Kafka client, ignored")
    p.done()
    sec.done()
    return KafkaConfig(enable=enable, addrs=addrs, producer=producer)


def _check_amqp_addr(path: str, addr: str) -> None:
    url = addr if "://" in addr else "amqp://" + addr
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid AMQP address {addr!r}: {exc}") from None
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ConfigError(f"{path}: expected [amqp://][user:pass@]host[:port][/vhost], got {addr!r}")
    del port


def _header_value(path: str, value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float, bytes)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _header_value(f"{path}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_header_value(f"{path}[{i}]", v) for i, v in enumerate(value)]
    raise ConfigError(f"{path}: an AMQP header value must be a string, number, boolean, list or mapping, got {_describe(value)}")


def _parse_amqp(sec: _Section) -> AMQPConfig:
    enable = sec.bool("enable")
    addrs = sec.strings("addrs")
    for i, addr in enumerate(addrs):
        _check_amqp_addr(f"{sec.path}.addrs[{i}]", addr)
    if enable and not addrs:
        raise ConfigError(f"{sec.path}.addrs: at least one address is required when {sec.path}.enable is true")

    exchanges = []
    for s in sec.sections("exchanges"):
        name = s.str("name")
        if not name:
            raise ConfigError(f"{s.path}.name: an exchange to declare needs a name")
        kind = s.str("kind", default="direct") or "direct"
        if kind not in _AMQP_KINDS and not kind.startswith("x-"):
            raise ConfigError(f"{s.path}.kind: expected one of {', '.join(_AMQP_KINDS)} or an x- plugin type, got {kind!r}")
        exchanges.append(
            AMQPExchange(
                name=name,
                kind=kind,
                durable=s.bool("durable"),
                auto_delete=s.bool("auto_delete"),
                internal=s.bool("internal"),
                nowait=s.bool("nowait", "noWait"),
            )
        )
        s.done()
    queues = []
    for s in sec.sections("queues"):
        name = s.str("name")
        if not name:
            raise ConfigError(f"{s.path}.name: a queue to declare needs a name")
        queues.append(
            AMQPQueue(
                name=name,
                durable=s.bool("durable"),
                auto_delete=s.bool("auto_delete"),
                exclusive=s.bool("exclusive", "exclustive"),
                nowait=s.bool("nowait", "noWait"),
            )
        )
        s.done()
    bindings = []
    for s in sec.sections("queueBindings", "queuebindings", "queue_bindings"):
        queue_name = s.str("queue_name")
        if not queue_name:
            raise ConfigError(f"{s.path}.queue_name: a binding needs the queue's name")
        bindings.append(
            AMQPQueueBinding(
                queue_name=queue_name,
                exchange_name=s.str("exchange_name"),
                binding_key=s.str("binding_key"),
                nowait=s.bool("nowait", "noWait"),
            )
        )
        s.done()

    p = sec.section("producer")
    routing_keys = _claims(p, "routing_keys", enable)
    headers_key, headers_raw = p.get("headers")
    if headers_raw is None:
        headers: dict[str, Any] = {}
    elif isinstance(headers_raw, Mapping):
        headers = {str(k): _header_value(f"{p.path}.{headers_key}.{k}", v) for k, v in headers_raw.items()}
    else:
        raise ConfigError(f"{p.path}.{headers_key}: expected a mapping, got {_describe(headers_raw)}")
    expiration = p.get("expiration")[1]
    if isinstance(expiration, int) and not isinstance(expiration, bool):
        expiration = str(expiration)  # YAML `expiration: 60000` means the same as "60000"
    if expiration is None:
        expiration = ""
    if not isinstance(expiration, str) or (expiration and not expiration.isdigit()):
        raise ConfigError(f"{p.path}.expiration: expected milliseconds as digits (\"60000\"), got {_describe(expiration)}")
    producer = AMQPProducer(
        routing_keys=routing_keys,
        exchange=p.str("exchange"),
        mandatory=p.bool("mandatory"),
        immediate=p.bool("immediate"),
        headers=types.MappingProxyType(headers),
        content_type=p.str("content_type"),
        content_encoding=p.str("content_encoding"),
        delivery_mode=p.int("delivery_mode", hi=2),
        priority=p.int("priority", hi=9),
        reply_to=p.str("reply_to"),
        expiration=expiration,
        type=p.str("type"),
        user_id=p.str("user_id"),
        app_id=p.str("app_id"),
    )
    if producer.immediate:
        sec.warn(f"{p.path}.immediate: ignored; RabbitMQ refuses the immediate flag")
    p.done()
    config = AMQPConfig(
        enable=enable,
        addrs=addrs,
        vhost=sec.str("vhost"),
        channel_max=sec.int("channel_max", hi=65535),
        frame_size=sec.int("frame_size"),
        heartbeat=sec.int("heartbeat"),
        locale=sec.str("locale"),
        exchanges=tuple(exchanges),
        queues=tuple(queues),
        queue_bindings=tuple(bindings),
        producer=producer,
        pool_size=sec.int("pool_size", default=8, lo=1),
    )
    if config.frame_size and config.frame_size < 4096:
        raise ConfigError(f"{sec.path}.frame_size: AMQP needs at least 4096 bytes, got {config.frame_size}")
    sec.done()
    return config


def _check_subjects(sec: _Section, key: str, subjects: tuple[str, ...]) -> None:
    for i, subject in enumerate(subjects):
        if any(c.isspace() for c in subject) or subject.startswith(".") or subject.endswith(".") or ".." in subject:
            raise ConfigError(f"{sec.key_path(key)}[{i}]: {subject!r} is not a valid NATS subject")
        tokens = subject.split(".")
        if "*" in tokens or ">" in tokens:
            sec.warn(f"{sec.key_path(key)}[{i}]: {subject!r} has a wildcard; only an edge topic equal to it matches")


def _parse_nats(sec: _Section) -> NatsConfig:
    enable = sec.bool("enable")
    addrs = _addrs(sec, enable, schemes=("nats", "tls"))
    js = sec.section("jetstream")
    js_enable = js.bool("enable")
    js_name = js.str("name")
    jp = js.section("producer")
    js_subjects = _claims(jp, "subjects", enable and js_enable)
    _check_subjects(jp, "subjects", js_subjects)
    jp.done()
    js.done()
    if js_enable and enable:
        if not js_name:
            raise ConfigError(f"{js.path}.name: a stream name is required when {js.path}.enable is true")
        if any(c in js_name for c in " \t.*>/\\"):
            raise ConfigError(f"{js.path}.name: {js_name!r} is not a valid stream name (no spaces, '.', '*', '>', slashes)")
    if js_enable and not enable:
        sec.warn(f"{js.path}.enable: ignored because {sec.path}.enable is false")
    p = sec.section("producer")
    subjects = p.strings("subjects")
    if enable and not subjects and not js_enable:
        sec.warn(f"{p.path}.subjects: empty, so this broker receives nothing")
    _check_subjects(p, "subjects", subjects)
    p.done()
    sec.done()
    return NatsConfig(
        enable=enable,
        addrs=addrs,
        producer=NatsProducer(subjects=subjects),
        jetstream=NatsJetStream(enable=js_enable, name=js_name, producer=NatsProducer(subjects=js_subjects)),
    )


def _parse_nsq(sec: _Section) -> NSQConfig:
    enable = sec.bool("enable")
    addrs = _addrs(sec, enable, first_only=True)
    p = sec.section("producer")
    topics = _claims(p, "topics", enable)
    for i, topic in enumerate(topics):
        if not _NSQ_TOPIC.match(topic):
            raise ConfigError(f"{p.path}.topics[{i}]: {topic!r} is not a valid NSQ topic name ([.A-Za-z0-9_-], up to 64)")
    p.done()
    config = NSQConfig(enable=enable, addrs=addrs, producer=NSQProducer(topics=topics), pool_size=sec.int("pool_size", default=8, lo=1))
    sec.done()
    return config


def _parse_redis(sec: _Section) -> RedisConfig:
    enable = sec.bool("enable")
    addrs = _addrs(sec, enable, first_only=True)
    p = sec.section("producer")
    producer = RedisProducer(
        channels=_claims(p, "channels", enable),
        stream=p.bool("stream"),
        stream_maxlen=p.int("stream_maxlen"),
    )
    if producer.stream_maxlen and not producer.stream:
        sec.warn(f"{p.path}.stream_maxlen: ignored because {p.path}.stream is false")
    p.done()
    config = RedisConfig(
        enable=enable,
        addrs=addrs,
        db=sec.int("db"),
        password=sec.str("password"),
        producer=producer,
        pool_size=sec.int("pool_size", default=32, lo=1),
    )
    sec.done()
    return config


def parse_mqm(raw: dict[str, Any] | None, warn: Callable[[str], None]) -> MQMConfig:
    """Validate the ``mqm`` mapping (as loaded from YAML) into frozen config.

    Raises ``ConfigError`` naming the key path (``mqm.kafka.addrs[0]: ...``) on a
    wrong value or an unknown key; calls ``warn`` for ignored keys.
    """
    top = _Section(raw, "mqm", warn)
    config = MQMConfig(
        kafka=_parse_kafka(top.section("kafka")),
        amqp=_parse_amqp(top.section("amqp")),
        nats=_parse_nats(top.section("nats")),
        nsq=_parse_nsq(top.section("nsq")),
        redis=_parse_redis(top.section("redis")),
    )
    top.done()
    return config
