"""The frontier side of a cluster: tell Frontlas who we are and which edges and
services we hold, batched and asynchronously.

:class:`FrontlasReporter` is a :class:`~frontier.sessions.info.SessionObserver`:
its observer methods only record the change in memory and wake one greenlet, so a
slow or dead Frontlas never delays an edge. That greenlet sends what changed as one
``frontlas.report`` every ``flush_interval`` at most (several changes of one edge
collapse into its latest state), and a heartbeat report when nothing changed. When
Frontlas answers that it holds nothing for this process (first start, a Redis that
lost its data, a TTL that passed while Frontlas was unreachable) the reporter
registers again and sends a full snapshot. See :mod:`frontier.cluster.protocol`
and ``docs/cluster.md``.
"""

from __future__ import annotations

import logging
import random
import socket
import time
import uuid
from typing import Any, Sequence

import gevent
from gevent.event import Event
from prometheus_client import Counter, Gauge

from frontier.config import Config, parse_addr
from frontier.sdk.edge import Edge
from frontier.sessions.info import EdgeInfo, ServiceInfo
from frontier.wire.errors import BrokerUnavailable, ConfigError, ConnectionClosed, FrontierError, Timeout

from . import protocol as P

log = logging.getLogger("frontier.cluster")

REGISTERED = Gauge("frontier_frontlas_registered", "1 while this frontier is registered with Frontlas")
REPORTS = Counter("frontier_frontlas_reports_total", "Calls to Frontlas by kind and result", ["kind", "result"])


class _Resync(Exception):
    """Frontlas needs a register + full snapshot."""


class _Conflict(Exception):
    """Another live frontier holds our id."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class FrontlasReporter:
    """Reports one frontier to Frontlas (``frontlas.enable``).

    ``addrs`` are Frontlas frontier-plane addresses, tried in turn. Start it with
    the gateway's bound listener addresses; ``registered`` is True while Frontlas
    lists this frontier with what it holds.
    """

    #: seconds a change waits for more before the report goes out
    flush_interval = 0.05
    #: changes (edges + services) per report
    max_batch = 2000
    #: rows per snapshot chunk
    sync_chunk = 2000
    #: seconds a Frontlas call may take
    call_timeout = 10.0
    #: first reconnect delay (doubles per failure, jittered) and its cap
    backoff_base = 0.1
    backoff_max = 3.0
    #: seconds between heartbeats until Frontlas says otherwise
    default_heartbeat = 10.0

    def __init__(self, frontier_id: str, addrs: Sequence[str], *, ssl_context: Any = None,
                 advertised_sb_addr: str = "", advertised_eb_addr: str = "") -> None:
        if frontier_id:
            P.check_frontier_id(frontier_id)
        if not addrs:
            raise ConfigError("frontlas.dial.addrs: expected at least one host:port")
        self._frontier_id = frontier_id
        self.addrs = list(addrs)
        self.ssl_context = ssl_context
        self.session = uuid.uuid4().hex
        self._advertised = (advertised_sb_addr, advertised_eb_addr)
        self.instance: P.Instance | None = None
        # what this frontier holds: edge_id -> (addr, online time); service_id -> row tail
        self._edges: dict[int, tuple[str, float]] = {}
        self._services: dict[int, tuple[str, str, float, list[str], list[str]]] = {}
        # ids whose state changed since the last report (insertion-ordered sets)
        self._dirty_edges: dict[int, None] = {}
        self._dirty_services: dict[int, None] = {}
        self._wake = Event()
        self._seq = 0
        self._inflight: dict[str, Any] | None = None
        self._need_sync = True
        self._synced = False
        self._last_ok = 0.0
        self._ttl = 30.0
        self._heartbeat = self.default_heartbeat
        self._client: Edge | None = None
        self._addr_index = random.randrange(len(self.addrs))
        self._loop: gevent.Greenlet | None = None
        self._stopping = False
        self._conflict_logged = False

    @classmethod
    def from_config(cls, config: Config) -> "FrontlasReporter":
        """A reporter for ``config.frontlas`` and ``daemon.frontier_id``."""
        fid = config.daemon.frontier_id
        if fid:
            try:
                P.check_frontier_id(fid)
            except ValueError as exc:
                raise ConfigError(f"daemon.frontier_id: {exc}") from None
        ctx = None
        tls = config.frontlas.dial.tls
        if tls.enable:
            import ssl

            ctx = ssl.create_default_context(cafile=tls.ca_certs[0] if tls.ca_certs else None)
            if tls.insecure_skip_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if tls.mtls and tls.certs:
                ctx.load_cert_chain(tls.certs[0].cert, tls.certs[0].key)
        return cls(fid, config.frontlas.dial.addrs, ssl_context=ctx,
                   advertised_sb_addr=config.servicebound.listen.advertised_addr,
                   advertised_eb_addr=config.edgebound.listen.advertised_addr)

    # -- SessionObserver: record and wake, never block ---------------------------------------

    def edge_online(self, edge: EdgeInfo) -> None:
        self._edges[edge.edge_id] = (edge.addr, edge.created_at)
        self._mark(self._dirty_edges, edge.edge_id)

    def edge_updated(self, edge: EdgeInfo) -> None:
        pass  # Frontlas keeps no RPC lists of edges

    def edge_offline(self, edge: EdgeInfo) -> None:
        self._edges.pop(edge.edge_id, None)
        self._mark(self._dirty_edges, edge.edge_id)

    def service_online(self, service: ServiceInfo) -> None:
        self._services[service.service_id] = (service.name, service.addr, service.created_at,
                                              list(service.rpcs), list(service.topics))
        self._mark(self._dirty_services, service.service_id)

    service_updated = service_online

    def service_offline(self, service: ServiceInfo) -> None:
        self._services.pop(service.service_id, None)
        self._mark(self._dirty_services, service.service_id)

    def _mark(self, dirty: dict[int, None], key: int) -> None:
        dirty[key] = None
        self._wake.set()

    # -- life ----------------------------------------------------------------------------------

    @property
    def frontier_id(self) -> str:
        """This frontier's id in the cluster (known after :meth:`start`)."""
        return self.instance.frontier_id if self.instance else self._frontier_id

    @property
    def registered(self) -> bool:
        """True while Frontlas lists this frontier with everything it holds."""
        return self._synced and time.monotonic() - self._last_ok < self._ttl

    def start(self, service_addr: tuple[str, int], edge_addr: tuple[str, int]) -> None:
        """Start reporting; the addresses are the gateway's bound listeners."""
        sb = self._advertised[0] or _advertise(service_addr, self.addrs[0])
        eb = self._advertised[1] or _advertise(edge_addr, self.addrs[0])
        fid = self._frontier_id or f"{socket.gethostname()}-{service_addr[1]}"
        self.instance = P.Instance(fid, self.session, sb, eb)
        self._loop = gevent.spawn(self._run)
        log.info("reporting to Frontlas %s as frontier %s (services %s, edges %s)", ", ".join(self.addrs), fid, sb, eb)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reporting, then unregister (best effort, within ``timeout``)."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            # let a report in flight finish, so nothing re-registers after the unregister
            self._loop.join(timeout=min(1.0, timeout))
            self._loop.kill(block=True, timeout=timeout)
        client = self._client
        if client is not None and self.instance is not None and self._synced:
            try:
                client.call(P.UNREGISTER, P.pack({"frontier_id": self.instance.frontier_id, "session": self.session}), timeout=timeout)
                log.info("unregistered from Frontlas")
            except FrontierError as exc:
                log.info("could not unregister from Frontlas (%s); it forgets this frontier after its TTL", exc)
        self._close_client()
        self._synced = False
        REGISTERED.set(0)

    # -- the reporting greenlet ----------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                if self._client is None:
                    self._client = self._dial()
                if self._need_sync:
                    self._register()
                    self._sync()
                self._report_once()
                failures = 0
            except _Resync:
                self._set_synced(False)
                self._need_sync = True
            except _Conflict as exc:
                self._set_synced(False)
                self._need_sync = True
                if not self._conflict_logged:
                    log.error("Frontlas refuses frontier id %s: another live frontier holds it; retrying", self.frontier_id)
                    self._conflict_logged = True
                gevent.sleep(min(max(exc.retry_after, 0.5), self._heartbeat))
            except (ConnectionClosed, Timeout, OSError) as exc:
                failures += 1
                self._close_client()
                self._addr_index = (self._addr_index + 1) % len(self.addrs)
                delay = self._delay(failures)
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "Frontlas unreachable (%s); retrying in %.2fs", exc, delay)
                gevent.sleep(delay)
            except BrokerUnavailable as exc:  # Frontlas is up, its Redis is not
                failures += 1
                log.log(logging.WARNING if failures == 1 else logging.DEBUG, "Frontlas cannot reach Redis: %s", exc)
                gevent.sleep(self._delay(failures))
            except FrontierError as exc:
                failures += 1
                log.error("Frontlas refused a report (%s); starting over", exc)
                self._inflight = None
                self._need_sync = True
                gevent.sleep(self._delay(failures))
            except Exception:
                log.exception("the Frontlas reporter failed; restarting it")
                self._close_client()
                self._need_sync = True
                gevent.sleep(1.0)
            REGISTERED.set(1 if self.registered else 0)

    def _delay(self, failures: int) -> float:
        """Jittered exponential backoff, capped below the heartbeat so a Frontlas that
        comes back is reached before this frontier's registration expires."""
        cap = min(self.backoff_max, max(0.2, self._heartbeat / 2))
        return _jitter(min(cap, self.backoff_base * 2 ** min(failures, 10)))

    def _dial(self) -> Edge:
        assert self.instance is not None
        addr = self.addrs[self._addr_index]
        client = Edge(addr, meta=P.pack(self.instance.to_dict()), timeout=self.call_timeout, reconnect=False,
                      ssl_context=self.ssl_context, handler_threads=1)
        log.info("connected to Frontlas %s", addr)
        return client

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _call(self, kind: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        try:
            answer = P.unpack(self._client.call(method, P.pack(body), timeout=self.call_timeout))
        except FrontierError as exc:
            REPORTS.labels(kind=kind, result=type(exc).__name__).inc()
            raise
        status = answer.get("status") if isinstance(answer, dict) else None
        REPORTS.labels(kind=kind, result=str(status)).inc()
        if status in (P.OK, P.STALE):
            self._last_ok = time.monotonic()
            return answer
        if status == P.CONFLICT:
            raise _Conflict(float(answer.get("retry_after", 1)))
        if status in (P.UNKNOWN, P.ABORT):
            log.info("Frontlas %s our %s; registering and sending everything again", "lost" if status == P.UNKNOWN else "aborted", kind)
            raise _Resync()
        raise FrontierError(f"Frontlas answered {kind} with {answer!r}")

    def _register(self) -> None:
        assert self.instance is not None
        answer = self._call("register", P.REGISTER, self.instance.to_dict())
        exp = answer.get("expiration") or {}
        self._ttl = float(exp.get("frontier_meta", 30))
        self._heartbeat = max(0.2, float(answer.get("heartbeat", self.default_heartbeat)))
        if self._conflict_logged:
            log.info("Frontlas accepted frontier id %s", self.frontier_id)
            self._conflict_logged = False

    def _sync(self) -> None:
        """Send everything we hold; what changes meanwhile goes in later reports."""
        assert self.instance is not None
        self._inflight = None
        self._dirty_edges.clear()
        self._dirty_services.clear()
        edges = [[eid, addr, t] for eid, (addr, t) in self._edges.items()]
        services = [[sid, *row] for sid, row in self._services.items()]
        rows: list[tuple[str, list[Any]]] = [("edges", r) for r in edges] + [("services", r) for r in services]
        chunks = [rows[i:i + self.sync_chunk] for i in range(0, len(rows), self.sync_chunk)] or [[]]
        for index, chunk in enumerate(chunks):
            body = self._body(first=index == 0, last=index == len(chunks) - 1,
                              edges=[r for k, r in chunk if k == "edges"], services=[r for k, r in chunk if k == "services"])
            self._call("sync", P.SYNC, body)
        self._need_sync = False
        self._set_synced(True)
        log.info("registered with Frontlas: %d edges, %d services", len(edges), len(services))

    def _report_once(self) -> None:
        """Send the retried or next report, waiting for changes or the heartbeat."""
        if self._inflight is None:
            if not (self._dirty_edges or self._dirty_services):
                self._wake.clear()
                since = time.monotonic() - self._last_ok
                self._wake.wait(timeout=max(0.0, self._heartbeat - since))
            if self._stopping:
                return
            if self._dirty_edges or self._dirty_services:
                gevent.sleep(self.flush_interval)  # let a burst of changes join this report
            self._inflight = self._next_report()
        self._call("report", P.REPORT, self._inflight)
        self._inflight = None

    def _next_report(self) -> dict[str, Any]:
        edge_ids = _take(self._dirty_edges, self.max_batch)
        service_ids = _take(self._dirty_services, max(0, self.max_batch - len(edge_ids)))
        edges, services = self._edges, self._services
        return self._body(
            edges_on=[[e, *edges[e]] for e in edge_ids if e in edges],
            edges_off=[e for e in edge_ids if e not in edges],
            services_on=[[s, *services[s]] for s in service_ids if s in services],
            services_off=[s for s in service_ids if s not in services],
        )

    def _body(self, **fields: Any) -> dict[str, Any]:
        assert self.instance is not None
        self._seq += 1
        return {"frontier_id": self.instance.frontier_id, "session": self.session, "seq": self._seq, **fields}

    def _set_synced(self, value: bool) -> None:
        self._synced = value
        REGISTERED.set(1 if self.registered else 0)


def _take(dirty: dict[int, None], limit: int) -> list[int]:
    out = []
    for key in dirty:
        if len(out) >= limit:
            break
        out.append(key)
    for key in out:
        del dirty[key]
    return out


def _jitter(cap: float) -> float:
    """Equal jitter: half fixed, half random."""
    return cap / 2 + random.uniform(0, cap / 2)


def _advertise(bound: tuple[str, int], frontlas_addr: str) -> str:
    """``host:port`` peers can dial for a listener bound to ``bound``; an unspecified
    host becomes the local address that routes towards Frontlas."""
    host, port = bound[0], bound[1]
    if host in ("", "0.0.0.0", "::"):
        host = _local_ip_towards(frontlas_addr)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _local_ip_towards(addr: str) -> str:
    host, port = parse_addr(addr)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host or "127.0.0.1", port or 1))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
