"""Frontlas' state, all of it in Redis: which frontier holds which edge and service.

Key layout (``P`` is ``redis.key_prefix``, ``frontlas:`` by default)::

    P{frontiers}:f:<fid>      HASH  frontier_id, session, advertised_sb_addr,
                                    advertised_eb_addr, edge_count, service_count,
                                    registered_at, update_time      TTL frontier_meta
    P{frontiers}:index        ZSET  fid -> ordinal (stable order for paging)
    P{frontiers}:ordinal      STRING counter behind the ordinals
    P{<fid>}:state            HASH  session, seq (last report applied)  TTL min(edge, service)
    P{<fid>}:edges            HASH  edge_id -> {"addr", "update_time"}   TTL edge_meta
    P{<fid>}:services         HASH  service_id -> {"service", "addr", ...} TTL service_meta
    P{<fid>}:sync[:edges|:services]  a snapshot being received (staging)

A frontier's reports refresh its keys' TTLs in one or two script calls, whatever
its number of edges: nothing is written per edge heartbeat. Liveness is the
frontier record's TTL: every answer starts from the live frontier records, so a
dead frontier, its edges and its services vanish from all answers together once
``frontier_meta`` passes. Scripts only touch keys of one hash slot (see
:mod:`frontlas.scripts`), and nothing uses ``KEYS`` or ``SCAN`` over the keyspace.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from frontier.cluster import protocol as P
from frontier.config import parse_addr
from frontier.wire.errors import BrokerUnavailable, InvalidArgument

from . import scripts
from .config import Expiration, Redis as RedisConfig

log = logging.getLogger("frontlas.store")

T = TypeVar("T")

#: a ListEdges/ListServices cursor is ``ordinal << 32 | HSCAN cursor``
_CURSOR_BITS = 32
_CURSOR_MASK = (1 << _CURSOR_BITS) - 1


@dataclass(frozen=True, slots=True)
class FrontierRecord:
    """A live frontier as registered."""

    frontier_id: str
    advertised_sb_addr: str
    advertised_eb_addr: str
    edge_count: int = 0
    service_count: int = 0
    update_time: int = 0
    ordinal: int = 0


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    """An edge and the frontier holding it."""

    edge_id: int
    addr: str
    update_time: int
    frontier_id: str
    #: when it came online, to the microsecond (orders the records of an edge that moved)
    online_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A service connection and the frontier holding it (``service_id`` is per frontier)."""

    service_id: int
    service: str
    addr: str
    update_time: int
    frontier_id: str
    rpcs: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Applied:
    """What a report or sync did: a :mod:`frontier.cluster.protocol` status and the
    frontier's counts after it."""

    status: str
    edge_count: int = 0
    service_count: int = 0


def redis_from_config(cfg: RedisConfig) -> Any:
    """A redis-py client for ``redis.mode`` (standalone, sentinel or cluster)."""
    common: dict[str, Any] = {
        "username": cfg.username or None,
        "password": cfg.password or None,
        "decode_responses": True,
        "socket_connect_timeout": cfg.dial_timeout or 2.0,
        "socket_timeout": cfg.read_timeout or 3.0,
        "retry": Retry(ExponentialBackoff(cap=max(0.5, cfg.max_retry_backoff), base=max(0.05, cfg.min_retry_backoff)),
                       cfg.max_retries or 2),
        "client_name": cfg.clientname or None,
    }
    if cfg.protocol:
        common["protocol"] = cfg.protocol
    pool_size = cfg.pool_size or 64
    if cfg.mode == "standalone":
        host, port = parse_addr(cfg.standalone.addr, "redis.standalone.addr")
        pool = redis.BlockingConnectionPool(
            host=host or "127.0.0.1", port=port, db=cfg.standalone.db, max_connections=pool_size,
            timeout=cfg.pool_timeout or 3.0, **common,
        )
        return redis.Redis(connection_pool=pool)
    if cfg.mode == "sentinel":
        from redis.sentinel import Sentinel

        nodes = [parse_addr(a, "redis.sentinel.addrs") for a in cfg.sentinel.addrs]
        sentinel = Sentinel(nodes, sentinel_kwargs={"socket_timeout": common["socket_timeout"]}, **common)
        return sentinel.master_for(cfg.sentinel.master_name, db=cfg.sentinel.db, max_connections=pool_size)
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(*parse_addr(a, "redis.cluster.addrs")) for a in cfg.cluster.addrs]
    kwargs = dict(common)
    kwargs.pop("retry")  # the cluster client retries on its own terms
    return RedisCluster(startup_nodes=nodes, max_connections=pool_size,
                        **({"cluster_error_retry_attempts": cfg.cluster.max_redirects} if cfg.cluster.max_redirects else {}),
                        **kwargs)


class ClusterStore:
    """Reads and writes the cluster map in Redis; raises ``BrokerUnavailable`` when
    Redis does not answer. Safe to share between greenlets."""

    #: seconds a half-received snapshot survives an interrupted sync
    staging_ttl = 120
    #: at most one prune of expired index members per this many seconds
    prune_every = 5.0

    def __init__(self, client: Any, expiration: Expiration, *, prefix: str = "frontlas:",
                 timed: Callable[[str, Callable[[], Any]], Any] | None = None) -> None:
        self.redis = client
        #: runs every Redis call as ``timed(op, fn)`` (metrics: :class:`frontlas.metrics.RedisStats`)
        self._timed = timed or (lambda op, fn: fn())
        self.exp = expiration
        self.prefix = prefix
        self._register = client.register_script(scripts.REGISTER)
        self._touch = client.register_script(scripts.TOUCH)
        self._apply = client.register_script(scripts.APPLY)
        self._sync = client.register_script(scripts.SYNC)
        self._unregister_frontier = client.register_script(scripts.UNREGISTER_FRONTIER)
        self._unregister_data = client.register_script(scripts.UNREGISTER_DATA)
        self._mhgetall = client.register_script(scripts.MHGETALL)
        self._prune = client.register_script(scripts.PRUNE)
        self._last_prune = 0.0

    # -- keys ----------------------------------------------------------------------------

    def _fkey(self, fid: str) -> str:
        return f"{self.prefix}{{frontiers}}:f:{fid}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}{{frontiers}}:index"

    @property
    def _ordinal(self) -> str:
        return f"{self.prefix}{{frontiers}}:ordinal"

    def _slot_keys(self, fid: str) -> list[str]:
        """state, edges, services, sync marker, staging edges, staging services."""
        base = f"{self.prefix}{{{fid}}}"
        return [f"{base}:state", f"{base}:edges", f"{base}:services", f"{base}:sync", f"{base}:sync:edges", f"{base}:sync:services"]

    def _edges_key(self, fid: str) -> str:
        return f"{self.prefix}{{{fid}}}:edges"

    def _services_key(self, fid: str) -> str:
        return f"{self.prefix}{{{fid}}}:services"

    @property
    def _state_ttl(self) -> int:
        return min(self.exp.edge_meta, self.exp.service_meta)

    # -- Redis calls -----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return self._timed(what, fn)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis did not answer {what}: {exc}") from None

    def ping(self) -> bool:
        """True if Redis answers."""
        try:
            return bool(self._timed("ping", self.redis.ping))
        except redis.RedisError:
            return False

    # -- the frontier plane: writes -------------------------------------------------------

    def register(self, inst: P.Instance) -> tuple[str, int]:
        """Register (or refresh) a frontier: ``("ok", ordinal)`` or ``("conflict", ttl)``."""
        status, value = self._call("register", lambda: self._register(
            keys=[self._fkey(inst.frontier_id), self._index, self._ordinal],
            args=[inst.frontier_id, inst.session, inst.advertised_sb_addr, inst.advertised_eb_addr,
                  self.exp.frontier_meta, int(time.time())]))
        return status, int(value)

    def report(self, fid: str, session: str, seq: int, *, edges_on: Sequence[P.EdgeRow] = (),
               edges_off: Sequence[int] = (), services_on: Sequence[P.ServiceRow] = (),
               services_off: Sequence[int] = ()) -> Applied:
        """Apply one report (changes since the last; empty: a heartbeat)."""
        args: list[Any] = [session, seq, self.exp.edge_meta, self.exp.service_meta, self._state_ttl,
                           len(edges_on), len(edges_off), len(services_on), len(services_off)]
        for row in edges_on:
            args += _edge_field(row)
        args += [int(e) for e in edges_off]
        for row in services_on:
            args += _service_field(row)
        args += [int(s) for s in services_off]
        keys = self._slot_keys(fid)[:3]
        status, edges, services = self._call("report", lambda: self._apply(keys=keys, args=args))
        if status in (P.OK, P.STALE):
            touched = self._touch_frontier(fid, session, int(edges), int(services))
            if touched != P.OK:
                status = touched
        return Applied(status, int(edges), int(services))

    def sync(self, fid: str, session: str, seq: int, *, first: bool, last: bool,
             edges: Sequence[P.EdgeRow] = (), services: Sequence[P.ServiceRow] = ()) -> Applied:
        """Apply one chunk of a snapshot; the last one replaces what Frontlas held."""
        args: list[Any] = [session, seq, int(first), int(last), self.exp.edge_meta, self.exp.service_meta,
                           self._state_ttl, self.staging_ttl, len(edges), len(services)]
        for row in edges:
            args += _edge_field(row)
        for row in services:
            args += _service_field(row)
        status, n_edges, n_services = self._call("sync", lambda: self._sync(keys=self._slot_keys(fid), args=args))
        if status == P.OK and last:
            status = self._touch_frontier(fid, session, int(n_edges), int(n_services))
        return Applied(status, int(n_edges), int(n_services))

    def _touch_frontier(self, fid: str, session: str, edges: int, services: int) -> str:
        return self._call("heartbeat", lambda: self._touch(
            keys=[self._fkey(fid), self._index, self._ordinal],
            args=[fid, session, self.exp.frontier_meta, int(time.time()), edges, services]))

    def unregister(self, fid: str, session: str) -> bool:
        """A clean shutdown: forget the frontier and all it held (only this session's)."""
        gone = self._call("unregister", lambda: self._unregister_frontier(
            keys=[self._fkey(fid), self._index], args=[fid, session]))
        self._call("unregister", lambda: self._unregister_data(keys=self._slot_keys(fid), args=[session]))
        return bool(gone)

    # -- reads: frontiers -----------------------------------------------------------------

    def frontiers(self) -> list[FrontierRecord]:
        """Every live frontier, in ordinal (registration) order."""
        members = self._call("list frontiers", lambda: self.redis.zrange(self._index, 0, -1, withscores=True))
        if not members:
            return []
        fids = [m for m, _ in members]
        rows = self._call("list frontiers", lambda: self._mhgetall(keys=[self._fkey(f) for f in fids]))
        out, dead = [], []
        for (fid, ordinal), flat in zip(members, rows):
            if not flat:
                dead.append(fid)
                continue
            out.append(_frontier(dict(zip(flat[::2], flat[1::2])), fid, int(ordinal)))
        if dead:
            self._maybe_prune(dead)
        return out

    def _maybe_prune(self, dead: list[str]) -> None:
        now = time.monotonic()
        if now - self._last_prune < self.prune_every:
            return
        self._last_prune = now
        try:
            self._timed("prune", lambda: self._prune(keys=[self._index, *(self._fkey(f) for f in dead)], args=dead))
        except redis.RedisError as exc:
            log.debug("pruning expired frontiers failed: %s", exc)

    def frontiers_by_id(self, fids: Sequence[str]) -> list[FrontierRecord | None]:
        """The live frontiers with these ids, in the same order (None: not live)."""
        live = {f.frontier_id: f for f in self.frontiers()}
        return [live.get(f) for f in fids]

    # -- reads: edges -------------------------------------------------------------------------

    def _hget_all_frontiers(self, key_of: Callable[[str], str], field_ids: Sequence[int], live: Sequence[FrontierRecord]) -> list[list[str | None]]:
        """``HMGET`` of ``field_ids`` on each live frontier's hash, in one pipeline."""
        if not live or not field_ids:
            return [[None] * len(field_ids) for _ in live]
        def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for f in live:
                pipe.hmget(key_of(f.frontier_id), [str(i) for i in field_ids])
            return pipe.execute()
        return self._call("lookup", run)

    def find_edges(self, edge_ids: Sequence[int]) -> list[EdgeRecord | None]:
        """Where each edge is (the newest report wins when an edge moved), in order."""
        live = self.frontiers()
        rows = self._hget_all_frontiers(self._edges_key, edge_ids, live)
        out: list[EdgeRecord | None] = []
        for i, edge_id in enumerate(edge_ids):
            best: EdgeRecord | None = None
            for f, values in zip(live, rows):
                raw = values[i]
                if raw is None:
                    continue
                rec = _edge(edge_id, raw, f.frontier_id)
                if best is None or rec.online_at >= best.online_at:
                    best = rec
            out.append(best)
        return out

    def find_edge(self, edge_id: int) -> EdgeRecord | None:
        """Where one edge is, or None."""
        return self.find_edges([edge_id])[0]

    def scan_edges(self, cursor: int, count: int) -> tuple[list[EdgeRecord], int]:
        """One page of all edges: ``(edges, next cursor)``; cursor 0 starts and ends."""
        return self._scan(cursor, count, self._edges_key, lambda k, v, fid: _edge(int(k), v, fid))

    def count_edges(self) -> int:
        """Edges on all live frontiers (as each frontier last counted them)."""
        return sum(f.edge_count for f in self.frontiers())

    # -- reads: services --------------------------------------------------------------------

    def find_services(self, service_ids: Sequence[int], frontier_id: str | None = None) -> list[ServiceRecord | None]:
        """Each service by id; ids are per frontier, so without ``frontier_id`` the
        first live frontier (in ordinal order) that has one answers."""
        live = self.frontiers()
        if frontier_id is not None:
            live = [f for f in live if f.frontier_id == frontier_id]
        rows = self._hget_all_frontiers(self._services_key, service_ids, live)
        out: list[ServiceRecord | None] = []
        for i, sid in enumerate(service_ids):
            found = None
            for f, values in zip(live, rows):
                if values[i] is not None:
                    found = _service(sid, values[i], f.frontier_id)
                    break
            out.append(found)
        return out

    def scan_services(self, cursor: int, count: int) -> tuple[list[ServiceRecord], int]:
        """One page of all services: ``(services, next cursor)``."""
        return self._scan(cursor, count, self._services_key, lambda k, v, fid: _service(int(k), v, fid))

    def count_services(self) -> int:
        """Service connections on all live frontiers."""
        return sum(f.service_count for f in self.frontiers())

    # -- paging ------------------------------------------------------------------------------

    def _scan(self, cursor: int, count: int, key_of: Callable[[str], str], make: Callable[[str, str, str], T]) -> tuple[list[T], int]:
        """HSCAN the live frontiers' hashes in ordinal order. Like SCAN, ``count`` is a
        hint, an item present for the whole iteration is returned at least once, and
        one may be returned twice (an edge that moved)."""
        if cursor < 0 or count <= 0:
            raise InvalidArgument("cursor must be >= 0 and count > 0")
        start_ordinal, hcursor = cursor >> _CURSOR_BITS, cursor & _CURSOR_MASK
        live = [f for f in self.frontiers() if f.ordinal >= start_ordinal]
        out: list[T] = []
        for i, f in enumerate(live):
            c = hcursor if f.ordinal == start_ordinal else 0
            key = key_of(f.frontier_id)
            while True:
                c, items = self._call("scan", lambda: self.redis.hscan(key, c, count=max(1, count - len(out))))
                for k, v in items.items():
                    try:
                        out.append(make(k, v, f.frontier_id))
                    except (ValueError, TypeError, KeyError):
                        log.warning("skipping a malformed record %s in %s", k, key)
                c = int(c)
                if c == 0:
                    break
                if len(out) >= count:
                    if c > _CURSOR_MASK:
                        raise BrokerUnavailable(f"HSCAN cursor {c} of {key} does not fit a page cursor")
                    return out, (f.ordinal << _CURSOR_BITS) | c
            if len(out) >= count:
                more = i + 1 < len(live)
                return out, ((live[i + 1].ordinal << _CURSOR_BITS) if more else 0)
        return out, 0


# -- encoding ------------------------------------------------------------------------------


def _edge_field(row: P.EdgeRow) -> list[Any]:
    edge_id, addr, update_time = row[0], row[1], float(row[2])
    doc = {"addr": str(addr), "update_time": int(update_time), "t": update_time}
    return [int(edge_id), json.dumps(doc, separators=(",", ":"))]


def _service_field(row: P.ServiceRow) -> list[Any]:
    sid, name, addr, update_time, rpcs, topics = row[:6]
    doc = {"service": str(name), "addr": str(addr), "update_time": int(update_time),
           "rpcs": [str(r) for r in rpcs], "topics": [str(t) for t in topics]}
    return [int(sid), json.dumps(doc, separators=(",", ":"))]


def _edge(edge_id: int, raw: str, fid: str) -> EdgeRecord:
    doc = json.loads(raw)
    t = float(doc.get("t", doc.get("update_time", 0)))
    return EdgeRecord(int(edge_id), doc.get("addr", ""), int(t), fid, t)


def _service(sid: int, raw: str, fid: str) -> ServiceRecord:
    doc = json.loads(raw)
    return ServiceRecord(int(sid), doc.get("service", ""), doc.get("addr", ""), int(doc.get("update_time", 0)), fid,
                         tuple(doc.get("rpcs", ())), tuple(doc.get("topics", ())))


def _frontier(doc: dict[str, str], fid: str, ordinal: int) -> FrontierRecord:
    def num(name: str) -> int:
        try:
            return int(doc.get(name) or 0)
        except ValueError:
            return 0
    return FrontierRecord(fid, doc.get("advertised_sb_addr", ""), doc.get("advertised_eb_addr", ""),
                          num("edge_count"), num("service_count"), num("update_time"), ordinal)

