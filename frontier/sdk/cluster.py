"""The SDK against a cluster: ``ClusterService`` and ``ClusterEdge``, found through Frontlas.

Frontlas' REST API (``GET /cluster/v1/frontiers``, ``GET /cluster/v1/frontier``)
says which frontiers are alive and which one holds an edge; it is read with
``urllib`` (this module, like the rest of the SDK, uses only the standard library's
``socket``, ``threading`` and ``urllib``). Example::

    from frontier.sdk import ClusterService, ClusterEdge

    svc = ClusterService("frontlas:40011", name="echo-svc")
    svc.register("echo", lambda req: req.data)
    edge = ClusterEdge("frontlas:40011", meta=b"device-1")   # some frontier of the cluster
    svc.call(edge.edge_id, "ping", b"")                      # reaches it wherever it is

Thread safety is that of :class:`~frontier.sdk.service.Service`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from frontier.wire.errors import ConnectionClosed, EdgeNotOnline, FrontierError, Timeout

from . import client as client_module
from .client import _CLOSED, CallFuture, Handler, _fresh, _resolve_later, take, take_stream
from .edge import Edge
from .link import Link
from .message import Message
from .payload import Data
from .service import Service, ServiceHooks
from .stream import Stream

log = logging.getLogger("frontier.sdk.cluster")


@dataclass(frozen=True, slots=True)
class FrontierInfo:
    """One live frontier as Frontlas lists it."""

    frontier_id: str
    advertised_sb_addr: str  #: where services connect
    advertised_eb_addr: str  #: where edges connect


def _base_url(frontlas_addr: str) -> str:
    addr = frontlas_addr.strip()
    if "://" not in addr:
        addr = "http://" + addr
    return addr.rstrip("/")


def _get(base_url: str, path: str, params: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """GET a Frontlas REST path; None for a 404, ``ConnectionClosed`` if unreachable."""
    url = f"{base_url}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=max(timeout, 0.1)) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ConnectionClosed(f"Frontlas {base_url} answered {exc.code} to {path}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectionClosed(f"cannot ask Frontlas {base_url}: {exc}") from None


def _frontier(doc: dict[str, Any]) -> FrontierInfo:
    return FrontierInfo(str(doc.get("frontier_id", "")), str(doc.get("advertised_sb_addr", "")),
                        str(doc.get("advertised_eb_addr", "")))


def list_frontiers(frontlas_addr: str, timeout: float = 5.0) -> list[FrontierInfo]:
    """Every live frontier of the cluster behind ``frontlas_addr`` (its REST ``host:port``)."""
    doc = _get(_base_url(frontlas_addr), "/cluster/v1/frontiers", {}, timeout) or {}
    return [_frontier(f) for f in doc.get("frontiers") or () if f and f.get("frontier_id")]


def frontier_of_edge(frontlas_addr: str, edge_id: int, timeout: float = 5.0) -> FrontierInfo | None:
    """The frontier holding ``edge_id``, or None if Frontlas knows no such edge."""
    doc = _get(_base_url(frontlas_addr), "/cluster/v1/frontier", {"edge_id": edge_id}, timeout)
    if not doc or not doc.get("frontier"):
        return None
    return _frontier(doc["frontier"])


class _MemberService(Service):
    """A :class:`ClusterService`'s connection to one frontier: it shares the cluster's
    handlers, hooks and receive queues, and never closes them."""

    def __init__(self, cluster: "ClusterService", addr: str, **options: Any) -> None:
        self._cluster = cluster
        super().__init__(addr, name=cluster.name, topics=cluster.topics, **options)

    # Client.__init__ assigns these; the cluster's own objects are used instead
    @property  # type: ignore[override]
    def _handlers(self) -> dict[str, Handler]:
        return self._cluster._handlers

    @_handlers.setter
    def _handlers(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def _hooks(self) -> dict[str, Callable[..., Any]]:
        return self._cluster._hooks

    @_hooks.setter
    def _hooks(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def _inbox(self) -> queue.Queue:
        return self._cluster._inbox

    @_inbox.setter
    def _inbox(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def _accepts(self) -> queue.Queue:
        return self._cluster._accepts

    @_accepts.setter
    def _accepts(self, value: Any) -> None:
        pass

    def _wake_receivers(self) -> None:
        pass  # the cluster's queues outlive any one frontier


class ClusterService(ServiceHooks):
    """A :class:`~frontier.sdk.service.Service` over every frontier of a cluster.

    It asks Frontlas (``frontlas_addr``: the REST ``host:port`` of the cluster API,
    40011 by default) for the live frontiers, keeps one service connection to each
    (re-registering methods, topics and hooks on all of them), and routes
    ``call``/``publish``/``open_stream(edge_id)`` to the frontier holding the edge:
    remembered per edge, asked of Frontlas on a miss, retried once elsewhere when
    the edge moved. ``receive`` and ``accept_stream`` take from all frontiers. The
    frontier list is refreshed every ``refresh_interval`` seconds: new frontiers
    are connected, unlisted ones dropped once their connection is down (a frontier
    cut off from Frontlas, or a Frontlas whose Redis was just emptied, must not cut
    this service off from the frontier's edges). Other keyword options go to each
    ``Service`` (``ssl_context``, ``handler_threads``, ...).
    """

    #: seconds between refreshes of the frontier list
    refresh_interval = 10.0
    #: seconds a Frontlas REST request may take
    lookup_timeout = 5.0
    #: seconds a new frontier connection may take
    connect_timeout = 5.0

    def __init__(self, frontlas_addr: str, *, name: str | None = None, topics: Iterable[str] = (), timeout: float = 30.0,
                 refresh_interval: float | None = None, **options: Any) -> None:
        self.frontlas_url = _base_url(frontlas_addr)
        self.name = name or ""
        self.topics = tuple(topics)
        self.timeout = timeout
        if refresh_interval is not None:
            self.refresh_interval = refresh_interval
        self._options = options
        self._handlers: dict[str, Handler] = {}
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._inbox: queue.Queue = queue.Queue()
        self._accepts: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._members: dict[str, tuple[FrontierInfo, _MemberService]] = {}
        self._edges: dict[int, str] = {}  # edge id -> frontier id it was last reached on
        self._closed = False
        self._stop = threading.Event()
        self._pid = os.getpid()
        self.refresh()
        self._start_refresher()

    def _start_refresher(self) -> None:
        self._refresher = threading.Thread(target=self._refresh_loop, name="frontier-cluster-refresh", daemon=True)
        self._refresher.start()

    def _check_pid(self, *, reconnect: bool = True) -> None:
        """In a process forked since this was built (gunicorn ``--preload``, Celery
        prefork): rebuild the locks, queues and refresher the parent's threads held,
        and let every frontier connection reconnect in this process (waiting up to
        ``connect_timeout`` for them) before first use. The parent's connections are
        never touched."""
        if self._pid == os.getpid():
            return
        with client_module._fork_lock:
            if self._pid == os.getpid():
                return  # another thread of this process got here first
            self._lock = threading.Lock()
            self._refresh_lock = threading.Lock()
            self._stop = threading.Event()
            self._inbox = queue.Queue()
            self._accepts = queue.Queue()
            members = [m for _, m in self._members.values()]
            self._pid = os.getpid()
        if not reconnect:
            return
        for member in members:
            member._check_pid()  # forgets the parent's link and starts reconnecting
        deadline = time.monotonic() + self.connect_timeout
        while not all(m.connected or m.closed for m in members) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._closed:
            self._start_refresher()

    # -- the frontier list --------------------------------------------------------------------

    @property
    def frontiers(self) -> list[str]:
        """Ids of the frontiers this service is connected to (or reconnecting to)."""
        with self._lock:
            return sorted(self._members)

    def refresh(self) -> None:
        """Ask Frontlas for the live frontiers now; connect new ones, drop dead ones.
        Raises ``ConnectionClosed`` if Frontlas cannot be reached."""
        self._check_pid()
        listed = {f.frontier_id: f for f in self._fetch(self.lookup_timeout)}
        with self._refresh_lock:
            with self._lock:
                if self._closed:
                    return
                # a frontier missing from the list is kept while its connection is up: it may
                # only be cut off from Frontlas (or Frontlas from Redis), and its edges still
                # need this service; one listed with other addresses is replaced
                gone = [fid for fid, (info, member) in self._members.items()
                        if listed.get(fid, info) != info or (fid not in listed and not member.connected)]
                stale = [self._members.pop(fid)[1] for fid in gone]
                new = [f for fid, f in listed.items() if fid not in self._members]
            for member in stale:
                member.close()
            if gone:
                log.info("frontiers gone from the cluster: %s", ", ".join(gone))
                self._edges = {e: f for e, f in self._edges.items() if f not in gone}
            threads = [threading.Thread(target=self._join, args=(f,), daemon=True) for f in new]
            for t in threads:
                t.start()
            for t in threads:
                t.join(self.connect_timeout + 1.0)

    def _fetch(self, timeout: float) -> list[FrontierInfo]:
        doc = _get(self.frontlas_url, "/cluster/v1/frontiers", {}, timeout) or {}
        return [_frontier(f) for f in doc.get("frontiers") or () if f and f.get("frontier_id") and f.get("advertised_sb_addr")]

    def _join(self, info: FrontierInfo, within: float | None = None) -> None:
        """Connect to a frontier new to this service, in at most ``within`` seconds
        (default: ``connect_timeout``, and never more than the service's timeout)."""
        sent_rpcs, sent_hooks = set(self._handlers), set(self._hooks)  # at most what the handshake carries
        limit = min(self.timeout, self.connect_timeout, self.connect_timeout if within is None else max(0.1, within))
        try:
            member = _MemberService(self, info.advertised_sb_addr, timeout=limit, **self._options)
        except FrontierError as exc:
            log.info("cannot connect to frontier %s at %s yet: %s", info.frontier_id, info.advertised_sb_addr, exc)
            return
        member.timeout = self.timeout  # connecting is bounded; calls take the cluster's default
        with self._lock:
            if self._closed or info.frontier_id in self._members:
                extra: _MemberService | None = member
            else:
                self._members[info.frontier_id] = (info, member)
                extra = None
        if extra is not None:
            extra.close()
            return
        log.info("connected to frontier %s at %s", info.frontier_id, info.advertised_sb_addr)
        late_rpcs, late_hooks = tuple(set(self._handlers) - sent_rpcs), tuple(set(self._hooks) - sent_hooks)
        if late_rpcs or late_hooks:  # registered while this connection was being made
            try:
                member._register(rpcs=late_rpcs, hooks=late_hooks)
            except FrontierError as exc:
                log.debug("registering on frontier %s failed (%s); its next handshake carries it", info.frontier_id, exc)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except FrontierError as exc:
                log.warning("cannot refresh the frontier list: %s", exc)
            except Exception:
                log.exception("refreshing the frontier list failed")

    def _member(self, fid: str) -> _MemberService | None:
        with self._lock:
            entry = self._members.get(fid)
        return entry[1] if entry is not None else None

    # -- routing ------------------------------------------------------------------------------------

    def _lookup(self, edge_id: int, deadline: float) -> str | None:
        """The frontier Frontlas says holds ``edge_id`` (connecting to it if new)."""
        try:
            doc = _get(self.frontlas_url, "/cluster/v1/frontier", {"edge_id": edge_id},
                       min(self.lookup_timeout, max(0.1, deadline - time.monotonic())))
        except ConnectionClosed as exc:
            log.debug("lookup of edge %d failed: %s", edge_id, exc)
            return None
        if not doc or not doc.get("frontier"):
            return None
        info = _frontier(doc["frontier"])
        if self._member(info.frontier_id) is None and info.advertised_sb_addr:
            self._join(info, within=deadline - time.monotonic())  # the caller's deadline bounds the connect
        return info.frontier_id

    def _route(self, edge_id: int, timeout: float | None, what: str, op: Callable[[Service, float], Any]) -> Any:
        """Run ``op(member, remaining)`` on the frontier holding ``edge_id``.

        Only ``EdgeNotOnline`` answers, and frontiers not connected right now, lead to
        another frontier: neither delivered anything, so nothing runs twice.
        """
        if self._closed:
            raise ConnectionClosed("the cluster service is closed")
        timeout = self.timeout if timeout is None else timeout
        self._check_pid()
        deadline = time.monotonic() + timeout
        tried: set[str] = set()
        error: FrontierError | None = None

        def attempt(fid: str | None) -> tuple[bool, Any]:
            nonlocal error
            if fid is None or fid in tried:
                return False, None
            member = self._member(fid)
            if member is None or not member.connected:
                return False, None
            tried.add(fid)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(f"{what} to edge {edge_id} got no answer within {timeout}s")
            try:
                result = op(member, remaining)
            except EdgeNotOnline as exc:
                error = exc
                if self._edges.get(edge_id) == fid:
                    self._edges.pop(edge_id, None)
                return False, None
            self._edges[edge_id] = fid
            return True, result

        done, result = attempt(self._edges.get(edge_id))
        if done:
            return result
        done, result = attempt(self._lookup(edge_id, deadline))  # the edge moved, or is new to us
        if done:
            return result
        with self._lock:
            others = [fid for fid in self._members if fid not in tried]
        for fid in others:  # Frontlas may not know yet (reports are batched): ask each frontier
            done, result = attempt(fid)
            if done:
                return result
        if error is not None:
            raise _fresh(error)
        raise EdgeNotOnline(f"edge {edge_id} is not online on any frontier of the cluster")

    # -- reaching edges (Service's surface) ------------------------------------------------------------

    def call(self, edge_id: int, method: str, data: Data, timeout: float | None = None) -> bytes:
        """Call ``method`` on edge ``edge_id``, wherever it is, and return its answer."""
        return self._route(edge_id, timeout, f"call {method!r}", lambda m, t: m.call(edge_id, method, data, t))

    def publish(self, edge_id: int, data: Data, topic: str = "", timeout: float | None = None) -> None:
        """Deliver a message to edge ``edge_id``; returns after the edge's ``done()``."""
        self._route(edge_id, timeout, "publish", lambda m, t: m.publish(edge_id, data, topic, t))

    def open_stream(self, edge_id: int, timeout: float | None = None) -> Stream:
        """Open a stream to edge ``edge_id`` (it must ``accept_stream``)."""
        return self._route(edge_id, timeout, "open_stream", lambda m, t: m.open_stream(edge_id, t))

    def call_async(self, edge_id: int, method: str, data: Data, timeout: float | None = None) -> "Future[bytes]":
        """``call`` without waiting: a ``concurrent.futures.Future`` of the edge's
        answer, raising what ``call`` would."""
        return self._route_async(edge_id, timeout, lambda m, t: m.call_async(edge_id, method, data, t),
                                 lambda t: self.call(edge_id, method, data, t))

    def publish_async(self, edge_id: int, data: Data, topic: str = "", timeout: float | None = None) -> "Future[None]":
        """``publish`` without waiting: a future that resolves to None after the edge's
        ``done()``, or raises what ``publish`` would."""
        return self._route_async(edge_id, timeout, lambda m, t: m.publish_async(edge_id, data, topic, t),
                                 lambda t: self.publish(edge_id, data, topic, t))

    def _route_async(self, edge_id: int, timeout: float | None, start: Callable[[Service, float], "Future[Any]"],
                     blocking: Callable[[float], Any]) -> "Future[Any]":
        """An edge whose frontier is known and connected is reached without waiting
        (``start(member, timeout)``); if it answers ``EdgeNotOnline`` (the edge moved),
        or the frontier is not known yet, a helper thread routes it the blocking way
        (``blocking(remaining)``: Frontlas lookup, other frontiers) within the deadline."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        fid = self._edges.get(edge_id)
        member = self._member(fid) if fid is not None and not self._closed and self._pid == os.getpid() else None
        if member is None or not member.connected:
            return _in_thread(lambda: blocking(timeout))
        future: Future[Any] = CallFuture()

        def done(inner: "Future[Any]") -> None:
            error = inner.exception()
            if isinstance(error, EdgeNotOnline):
                if self._edges.get(edge_id) == fid:
                    self._edges.pop(edge_id, None)
                threading.Thread(target=_resolve_later, daemon=True, name="frontier-cluster-async",
                                 args=(future, lambda: blocking(max(deadline - time.monotonic(), 0.0)))).start()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(inner.result())

        start(member, timeout).add_done_callback(done)
        return future

    def receive(self, timeout: float | None = None) -> Message:
        """The next message an edge published to this service, from any frontier."""
        self._check_pid()
        return self._take(self._inbox, timeout)

    def streams(self) -> list[Stream]:
        """Open streams on every frontier connection (Go's ``ListStreams``), by frontier id."""
        self._check_pid()
        with self._lock:
            members = [member for _, (_, member) in sorted(self._members.items())]
        return [stream for member in members for stream in member.streams()]

    def accept_stream(self, timeout: float | None = None) -> Stream:
        """The next stream an edge opened to this service, from any frontier."""
        self._check_pid()
        return take_stream(self._accepts, timeout, self._closed_error)

    def _take(self, q: queue.Queue, timeout: float | None) -> Any:
        return take(q, timeout, self._closed_error)

    @staticmethod
    def _closed_error() -> FrontierError:
        return ConnectionClosed("the cluster service is closed")

    # -- registration: register() and the hooks come from ServiceHooks ---------------------------------

    def _register(self, **what: tuple[str, ...]) -> None:
        """Register methods, topics or hooks on every frontier (later ones get them at connect)."""
        self._check_pid()
        with self._lock:
            members = [m for _, m in self._members.values()]
        for member in members:
            try:
                member._register(**what)
            except ConnectionClosed:
                pass  # its next handshake carries it

    # -- life -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every frontier connection; waiting receivers get ``ConnectionClosed``."""
        self._check_pid(reconnect=False)  # in a forked child: never touch the parent's connections
        with self._lock:
            if self._closed:
                return
            self._closed = True
            members = [m for _, m in self._members.values()]
            self._members.clear()
        self._stop.set()
        for member in members:
            member.close()
        self._inbox.put(_CLOSED)
        self._accepts.put(_CLOSED)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "ClusterService":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _in_thread(fn: Callable[[], Any]) -> "Future[Any]":
    """A future resolved by ``fn()`` run on a helper thread."""
    future: Future[Any] = CallFuture()
    threading.Thread(target=_resolve_later, args=(future, fn), daemon=True, name="frontier-cluster-async").start()
    return future


class ClusterEdge(Edge):
    """An :class:`~frontier.sdk.edge.Edge` that finds its frontiers through Frontlas.

    ``frontlas_addr`` is the REST ``host:port`` of the cluster API. The edge
    connects to a random live frontier; when that frontier dies or says GOAWAY it
    asks Frontlas again and reconnects to another one after a random delay of up to
    ``reconnect_jitter`` seconds (then with the SDK's jittered backoff), keeping its
    edge id. Other arguments are :class:`Edge`'s.
    """

    #: most seconds of random delay before reconnecting (spreads a dead frontier's edges)
    reconnect_jitter = 0.5
    #: seconds a Frontlas request may take
    lookup_timeout = 5.0

    def __init__(self, frontlas_addr: str, *, meta: Data = b"", edge_id: int | None = None, timeout: float = 30.0,
                 reconnect: bool = True, **options: Any) -> None:
        self.frontlas_url = _base_url(frontlas_addr)
        addrs = self._frontier_addrs()
        if not addrs:
            raise ConnectionClosed(f"Frontlas {self.frontlas_url} lists no live frontier")
        self._constructing = True
        try:
            super().__init__(addrs, meta=meta, edge_id=edge_id, timeout=timeout, reconnect=reconnect, **options)
        finally:
            self._constructing = False

    @property
    def frontier_addr(self) -> str:
        """The edge address of the frontier this edge uses (or last used)."""
        return str(self._addrs[self._addr_index])

    def _frontier_addrs(self) -> list[str]:
        try:
            doc = _get(self.frontlas_url, "/cluster/v1/frontiers", {}, self.lookup_timeout) or {}
        except ConnectionClosed as exc:
            log.info("cannot list frontiers: %s", exc)
            return []
        addrs = [str(f["advertised_eb_addr"]) for f in doc.get("frontiers") or () if f and f.get("advertised_eb_addr")]
        random.shuffle(addrs)
        return addrs

    def _connect(self, addr: Any) -> Link:
        if not self._constructing:
            return super()._connect(addr)
        last: FrontierError | None = None
        for index, candidate in enumerate(self._addrs):  # first connection: any live frontier will do
            try:
                link = super()._connect(candidate)
            except (ConnectionClosed, Timeout) as exc:
                last = exc
                continue
            self._addr_index = index
            return link
        assert last is not None
        raise last

    def _reconnect_loop(self) -> None:
        lost = self._addrs[self._addr_index]
        time.sleep(random.uniform(0, self.reconnect_jitter))
        self._refresh_addrs(avoid=lost)
        super()._reconnect_loop()

    def _backoff(self, failures: int) -> float:
        if failures % max(1, len(self._addrs)) == 0:  # every frontier failed once: ask again
            self._refresh_addrs(avoid=None)
        return super()._backoff(failures)

    def _refresh_addrs(self, avoid: Any) -> None:
        """Take Frontlas' current list (runs on the reconnect thread, the only one
        that reads the list while reconnecting); ``avoid`` is tried last."""
        addrs = self._frontier_addrs()
        if not addrs:
            return  # keep the old list: Frontlas may be down, the frontiers not
        if avoid in addrs and len(addrs) > 1:
            addrs.remove(avoid)
            addrs.append(avoid)
        self._addrs = addrs
        self._addr_index = 0
