"""The one small interface every MQ sink implements, and what they share.

A sink forwards an edge's ``publish(topic, data)`` to one external broker and
returns only once that broker acknowledged it. The gateway runs under
``gevent.monkey.patch_all()`` and calls :meth:`Sink.produce` from a greenlet per
publish; a sink blocks only that greenlet, never the hub, and one slow broker never
delays another sink (each has its own connections and greenlets).

:class:`SinkBase` does the parts every broker shares: the deadline (a
``gevent.Timeout`` around the whole produce, so no library call can outlive it,
ending a little before the caller's own so the caller hears the broker's typed
``Timeout`` instead of giving up first), mapping errors to
:class:`~frontier.wire.errors.BrokerUnavailable` /
:class:`~frontier.wire.errors.Timeout`, the ``frontier_mq_produce_total`` metric, and
a health watcher greenlet that connects in the background and keeps probing, so a
sink comes back by itself when its broker does. Health is logged once per change
(a broker unreachable at start included), at most one line per ``log_interval``:
a flapping broker cannot flood the log.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol, runtime_checkable

import gevent
import gevent.event

from frontier import metrics
from frontier.wire.errors import BrokerUnavailable, FrontierError, Timeout, TopicNotOnline

log = logging.getLogger("frontier.mqm")

#: Header / property / stream-field names carrying the publish's origin, on every
#: broker that has headers. Values are text: the edge id in decimal.
HEADER_EDGE_ID = "frontier-edge-id"
HEADER_TOPIC = "frontier-topic"
HEADER_ADDR = "frontier-addr"


class ProbeSkipped(Exception):
    """Raised by a probe that could not check the broker this time (every connection
    is busy with a produce, which will tell): the health stays as it was."""


class MessageRefused(BrokerUnavailable):
    """The broker is up but refused this one message (too large, unroutable, nacked).

    A ``BrokerUnavailable`` to callers; the broker answered, so the sink stays healthy.
    """


@runtime_checkable
class Sink(Protocol):
    """One external broker that claims some topics."""

    #: "kafka" | "amqp" | "nats" | "jetstream" | "nsq" | "redis"
    broker: str
    #: the topics (subjects, routing keys, channels) this sink takes
    topics: frozenset[str]

    def produce(self, topic: str, data: bytes, *, edge_id: int, addr: str, timeout: float) -> None:
        """Store ``data`` under ``topic``; return only once the broker acknowledged it.

        Blocks the calling greenlet (never the hub). Raises ``BrokerUnavailable``
        when the broker is down or refused, ``Timeout`` when ``timeout`` seconds
        passed first (the message may still land: at-least-once).
        """
        ...

    def healthy(self) -> bool:
        """True while the broker is reachable, as last seen by a produce or probe."""
        ...

    def close(self) -> None:
        """Release connections and greenlets; later produces raise ``BrokerUnavailable``."""
        ...


class Deadline:
    """A point in ``time.monotonic()`` time; what is left of a produce's timeout."""

    __slots__ = ("at",)

    def __init__(self, timeout: float) -> None:
        self.at = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline passed."""
        return time.monotonic() >= self.at


class SinkBase:
    """Deadline, error mapping, metrics and health watching for one broker.

    Subclasses implement :meth:`_produce` (raise anything; it is mapped),
    :meth:`_probe` (check the broker, connecting if needed) and :meth:`_shutdown`.
    """

    broker: str = "?"
    #: seconds between probes while healthy (probes are cheap: a PING or a socket check)
    health_interval: float = 5.0
    #: first pause between probes while unhealthy; doubles up to ``retry_max``
    retry_interval: float = 0.25
    retry_max: float = 2.0
    #: deadline of one probe
    probe_timeout: float = 5.0
    #: seconds between two health log lines of one sink; a change within it is logged
    #: when the interval ends, if it still holds
    log_interval: float = 10.0
    #: most seconds a produce keeps before its caller's deadline (at most a tenth of
    #: it), so the broker's ``Timeout`` reaches the caller before the caller gives up
    answer_margin: float = 0.25

    def __init__(self, topics: frozenset[str] | tuple[str, ...], target: str) -> None:
        self.topics = frozenset(topics)
        #: where the broker is, for messages and logs (no credentials)
        self.target = target
        self._up = False
        self._down_reason = "not connected yet"
        self._reported: bool | None = None  # the health last logged (None: nothing yet)
        self._reported_at = 0.0
        self._closed = False
        self._watcher: gevent.Greenlet | None = None
        self._kick = gevent.event.Event()

    # -- the interface ---------------------------------------------------------------

    def produce(self, topic: str, data: bytes, *, edge_id: int, addr: str, timeout: float) -> None:
        """See :meth:`Sink.produce`."""
        if topic not in self.topics:
            raise TopicNotOnline(f"{self.broker} sink does not claim topic {topic!r}")
        if self._closed:
            self._count("error")
            raise BrokerUnavailable(f"{self.broker} sink for {self.target} is closed")
        if not isinstance(data, bytes):
            data = bytes(data)
        if timeout <= 0:
            self._count("timeout")
            raise Timeout(f"{self.broker}: deadline already passed for topic {topic!r}")
        timeout -= min(self.answer_margin, timeout / 10)
        deadline = Deadline(timeout)
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            self._produce(topic, data, edge_id, addr or "", deadline)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self._count("timeout")
            self._mark_down(f"no ack within {timeout:g}s")
            raise Timeout(f"{self.broker}: no ack from {self.target} for topic {topic!r} within {timeout:g}s") from None
        except Timeout:
            self._count("timeout")
            self._mark_down("produce timed out")
            raise
        except MessageRefused:
            self._count("error")
            self._mark_up()  # the broker answered: it is there
            raise
        except FrontierError as exc:
            self._count("error")
            self._mark_down(exc.message)
            raise
        except Exception as exc:
            self._count("error")
            reason = f"{exc.__class__.__name__}: {exc}"
            self._mark_down(reason)
            raise BrokerUnavailable(f"{self.broker}: {self.target} did not take topic {topic!r}: {reason}") from exc
        finally:
            timer.close()
        self._count("ok")
        self._mark_up()

    def healthy(self) -> bool:
        """See :meth:`Sink.healthy`."""
        return self._up and not self._closed

    def close(self) -> None:
        """See :meth:`Sink.close`. Idempotent; bounded in time."""
        if self._closed:
            return
        self._closed = True
        self._up = False
        if self._watcher is not None:
            self._watcher.kill(block=False)
        try:
            with gevent.Timeout(5):
                self._shutdown()
        except (Exception, gevent.Timeout) as exc:
            log.warning("%s sink for %s: close did not finish cleanly: %r", self.broker, self.target, exc)

    def start(self) -> None:
        """Start the health watcher, which also makes the first connection."""
        if self._watcher is None and not self._closed:
            self._watcher = gevent.spawn(self._watch)
            self._watcher.name = f"mqm-{self.broker}-watch"

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("up" if self._up else f"down: {self._down_reason}")
        return f"<{self.__class__.__name__} {self.target} topics={sorted(self.topics)} {state}>"

    # -- for subclasses --------------------------------------------------------------

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        raise NotImplementedError

    def _probe(self, deadline: Deadline) -> None:
        """Check (and if needed open) the way to the broker; raise if it is not there."""
        raise NotImplementedError

    def _shutdown(self) -> None:
        raise NotImplementedError

    def _headers(self, topic: str, edge_id: int, addr: str) -> dict[str, str]:
        return {HEADER_EDGE_ID: str(edge_id), HEADER_TOPIC: topic, HEADER_ADDR: addr}

    def _mark_up(self) -> None:
        self._up = True
        self._down_reason = ""
        self._report()

    def _mark_down(self, reason: str) -> None:
        if self._up:
            self._kick.set()  # probe again soon
        self._up = False
        self._down_reason = reason
        self._report()

    def _report(self) -> None:
        """Log the health if it differs from what was last logged, at most once per
        ``log_interval`` (the watcher calls this again, so a held change is logged late,
        not lost)."""
        if self._closed or self._up == self._reported:
            return
        now = time.monotonic()
        if self._reported is not None and now - self._reported_at < self.log_interval:
            return
        if self._up:
            log.info("%s sink: %s is reachable", self.broker, self.target)
        else:
            state = "unreachable" if self._reported is None else "unhealthy"
            log.warning("%s sink: %s is %s: %s", self.broker, self.target, state, self._down_reason)
        self._reported, self._reported_at = self._up, now

    def _count(self, result: str) -> None:
        metrics.MQ_PRODUCE.labels(broker=self.broker, result=result).inc()

    def _watch(self) -> None:
        pause = self.retry_interval
        while not self._closed:
            try:
                with gevent.Timeout(self.probe_timeout, Timeout(f"probe took over {self.probe_timeout:g}s")):
                    self._probe(Deadline(self.probe_timeout))
            except ProbeSkipped:
                self._report()
            except (Exception, Timeout) as exc:
                self._mark_down(f"{exc.__class__.__name__}: {exc}")
                log.debug("%s sink: probe of %s failed: %r", self.broker, self.target, exc)
            else:
                self._mark_up()
            if self._closed:
                return
            if self._up:
                wait, pause = self.health_interval, self.retry_interval
            else:
                wait, pause = pause, min(pause * 2, self.retry_max)
            self._kick.clear()
            self._kick.wait(wait)


def close_all(sinks: list[Sink]) -> None:
    """Close every sink at once (each bounded in time); for the gateway's shutdown."""
    greenlets = [gevent.spawn(sink.close) for sink in sinks]
    gevent.joinall(greenlets, timeout=10)

