"""NATS sinks, on nats-py through :mod:`frontier.mqm.aio`: core NATS and JetStream.

Core NATS (broker ``"nats"``): ``PUB`` then a ``PING``/``PONG`` round trip
(``flush``), so a produce returns once the server has processed the message. That
is all core NATS can acknowledge: a subject nobody subscribes to drops it.

JetStream (broker ``"jetstream"``): the stream ``mqm.nats.jetstream.name`` is
created for ``jetstream.producer.subjects`` if missing, and a produce returns once
the stream stored the message (the ``PubAck``). When JetStream is enabled it takes
its subjects; core subjects that JetStream does not list stay with core NATS.

Both carry ``frontier-edge-id``, ``frontier-topic`` and ``frontier-addr`` as NATS
headers. The client connects in the background and reconnects by itself; while it
is not connected a produce fails at once with ``BrokerUnavailable`` (nothing is
buffered to be sent later).
"""

from __future__ import annotations

import asyncio
import logging

import gevent
import gevent.event
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS

from frontier.mqm.aio import bridge
from frontier.mqm.base import Deadline, SinkBase
from frontier.mqm.config import NatsConfig
from frontier.wire.errors import BrokerUnavailable, Timeout

log = logging.getLogger("frontier.mqm")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


class NatsSink(SinkBase):
    """Publish to core NATS subjects, or (``jetstream=True``) into a JetStream stream."""

    #: seconds between reconnect attempts (nats-py's ``reconnect_time_wait``)
    reconnect_time_wait: float = 0.5
    #: seconds one connection attempt may take
    connect_timeout: float = 2.0

    def __init__(self, config: NatsConfig, subjects: tuple[str, ...], *, jetstream: bool = False) -> None:
        servers = [a if "://" in a else "nats://" + a for a in config.addrs]
        self.broker = "jetstream" if jetstream else "nats"
        target = ",".join(servers) + (f" stream {config.jetstream.name}" if jetstream else "")
        super().__init__(subjects, target)
        self.config = config
        self.jetstream = jetstream
        self.stream = config.jetstream.name
        self._servers = servers
        self._nc: NATS | None = None
        self._js = None
        self._stream_ready = False
        self._first_attempt = gevent.event.Event()
        self._connecting: asyncio.Task | None = None

    # -- connection (the coroutines run on the bridge's loop) ------------------------------

    def start(self) -> None:
        """Start connecting (in the background, for as long as it takes) and watching."""
        if self._nc is None and not self._closed:
            self._nc = NATS()
            bridge().spawn(self._connect)
        super().start()

    async def _connect(self) -> None:
        nc = self._nc
        self._connecting = asyncio.current_task()
        try:
            await nc.connect(
                servers=self._servers,
                name="frontier-gevent",
                connect_timeout=self.connect_timeout,
                reconnect_time_wait=self.reconnect_time_wait,
                max_reconnect_attempts=-1,  # keep trying, first connect included
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except (Exception, asyncio.CancelledError) as exc:  # only when closed while connecting
            log.info("%s sink: stopped connecting to %s: %r", self.broker, self.target, exc)
        finally:
            self._connecting = None
            self._first_attempt.set()
        if nc.is_connected:
            self._js = nc.jetstream()
            log.info("%s sink: connected to %s", self.broker, self.target)

    async def _on_error(self, exc: Exception) -> None:
        self._first_attempt.set()
        log.debug("%s sink: %s: %r", self.broker, self.target, exc)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            self._mark_down("disconnected")

    async def _on_reconnected(self) -> None:
        log.info("%s sink: reconnected to %s", self.broker, self.target)

    async def _ensure_stream(self) -> None:
        js = self._js
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=self.stream, subjects=sorted(self.topics))
            log.info("jetstream sink: created stream %s for %s", self.stream, sorted(self.topics))
        else:
            have = info.config.subjects or []
            missing = [s for s in sorted(self.topics) if not any(subject_matches(p, s) for p in have)]
            if missing:
                log.warning(
                    "jetstream sink: stream %s exists without subjects %s; publishes to them will fail", self.stream, missing
                )
        self._stream_ready = True

    # -- SinkBase ------------------------------------------------------------------------

    def _connected(self, deadline: Deadline) -> NATS:
        nc = self._nc
        if nc is None:
            raise BrokerUnavailable(f"{self.broker} sink for {self.target} was not started")
        if not self._first_attempt.is_set():
            self._first_attempt.wait(deadline.remaining())
        if not nc.is_connected or (self.jetstream and self._js is None):
            state = "reconnecting" if nc.is_reconnecting else "not connected"
            raise BrokerUnavailable(f"{self.broker}: {state} to {self.target}")
        return nc

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        nc = self._connected(deadline)
        headers = self._headers(topic, edge_id, addr)
        try:
            if self.jetstream:
                if not self._stream_ready:
                    bridge().call(self._ensure_stream)
                bridge().call(lambda: self._js.publish(topic, data, timeout=max(0.001, deadline.remaining()), headers=headers))
            else:

                async def publish() -> None:
                    await nc.publish(topic, data, headers=headers)
                    await nc.flush(timeout=max(0.001, deadline.remaining()))

                bridge().call(publish)
        except nats.errors.TimeoutError as exc:
            raise Timeout(f"{self.broker}: no ack from {self.target} for {topic!r} in time") from exc
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
            self._stream_ready = False  # the stream may be gone (server reset): re-check next time
            raise BrokerUnavailable(f"jetstream: no stream on {self.target} takes subject {topic!r}") from exc
        except nats.js.errors.Error as exc:
            raise BrokerUnavailable(f"jetstream: {self.target} refused {topic!r}: {exc}") from exc

    def _probe(self, deadline: Deadline) -> None:
        nc = self._connected(deadline)
        bridge().call(lambda: nc.flush(timeout=max(0.001, deadline.remaining())))
        if self.jetstream and not self._stream_ready:
            bridge().call(self._ensure_stream)

    def _shutdown(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            bridge().call(lambda: self._close(nc))

    async def _close(self, nc: NATS) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if not nc.is_closed:
            await nc.close()
