"""The default query store (``dao.backend: buntdb`` or ``memory``): plain dicts.

Updates are O(1) dict writes under a lock that is never held across a wait. A
query copies the values under that lock (one C-level copy) and filters, counts and
pages outside it, so gateway greenlets reporting sessions never queue behind a
query.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, TypeVar

from frontier.control.query import (
    EdgeQuery,
    EdgeRPCQuery,
    Order,
    Page,
    ServiceNamesQuery,
    ServiceQuery,
    Window,
    text_of,
)
from frontier.control.store import QueryStore
from frontier.sessions.info import EdgeInfo, ServiceInfo

R = TypeVar("R", "_EdgeRow", "_ServiceRow")


@dataclass(frozen=True, slots=True)
class _EdgeRow:
    info: EdgeInfo
    meta: str
    addr: str
    rpcs: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ServiceRow:
    info: ServiceInfo
    name: str
    addr: str
    rpcs: frozenset[str]
    topics: frozenset[str]


def _in_window(created_at: float, w: Window) -> bool:
    if w.start_time is not None and created_at < w.start_time:
        return False
    if w.end_time is not None and created_at >= w.end_time:
        return False
    return True


def _page_rows(rows: list[R], key: Callable[[R], object], order: Order, w: Window) -> tuple[R, ...]:
    """Rows ``[offset, offset+size)`` in ``order``, ties by id ascending (in the key)."""
    wanted = w.offset + w.page_size
    if w.offset >= len(rows):
        return ()
    if order.desc:
        top = heapq.nlargest(wanted, rows, key=key)
    else:
        top = heapq.nsmallest(wanted, rows, key=key)
    return tuple(top[w.offset:wanted])


def _page_names(first_seen: dict[str, float], order: Order, w: Window) -> Page[str]:
    """Distinct names paged in ``order`` (``create_time`` = earliest owner), ties by name."""
    names = sorted(first_seen)
    if order.field == "create_time":
        names.sort(key=first_seen.__getitem__, reverse=order.desc)  # stable: ties keep name order
    elif order.desc:
        names.reverse()
    return Page(tuple(names[w.offset:w.offset + w.page_size]), len(names))


def _first_seen(owners: Iterable[tuple[float, Iterable[str]]]) -> dict[str, float]:
    seen: dict[str, float] = {}
    for created_at, names in owners:
        for name in names:
            old = seen.get(name)
            if old is None or created_at < old:
                seen[name] = created_at
    return seen


def _prefix(value: str, prefix: Optional[str]) -> bool:
    return prefix is None or value.startswith(prefix)


class MemoryStore(QueryStore):
    """In-process dict store; the default backend."""

    backend = "memory"

    def __init__(self, *, debug: bool = False) -> None:
        self.debug = debug
        self._lock = threading.Lock()
        self._edges: dict[int, _EdgeRow] = {}
        self._services: dict[int, _ServiceRow] = {}

    # -- primitives -----------------------------------------------------------------

    def _put_edge(self, edge: EdgeInfo) -> None:
        row = _EdgeRow(edge, text_of(edge.meta), text_of(edge.addr), frozenset(map(text_of, edge.rpcs)))
        with self._lock:
            self._edges[edge.edge_id] = row

    def _drop_edge(self, edge_id: int) -> None:
        with self._lock:
            self._edges.pop(edge_id, None)

    def _put_service(self, service: ServiceInfo) -> None:
        row = _ServiceRow(
            service,
            text_of(service.name),
            text_of(service.addr),
            frozenset(map(text_of, service.rpcs)),
            frozenset(map(text_of, service.topics)),
        )
        with self._lock:
            self._services[service.service_id] = row

    def _drop_service(self, service_id: int) -> None:
        with self._lock:
            self._services.pop(service_id, None)

    # -- edges ------------------------------------------------------------------------

    def get_edge(self, edge_id: int) -> Optional[EdgeInfo]:
        row = self._edges.get(edge_id)
        return row.info if row is not None else None

    def _matching_edges(self, meta: Optional[str], edge_id: Optional[int], w: Window) -> list[_EdgeRow]:
        with self._lock:
            if edge_id is not None:
                row = self._edges.get(edge_id)
                rows = [row] if row is not None else []
            else:
                rows = list(self._edges.values())
        return [r for r in rows if _prefix(r.meta, meta) and _in_window(r.info.created_at, w)]

    def list_edges(self, query: EdgeQuery) -> Page[EdgeInfo]:
        self._trace("list_edges", query)
        w = query.window
        rows = [
            r
            for r in self._matching_edges(query.meta, query.edge_id, w)
            if _prefix(r.addr, query.addr) and (query.rpc is None or query.rpc in r.rpcs)
        ]
        key = _EDGE_KEYS[w.order.field]
        if w.order.desc:
            inner = key
            key = lambda r: (inner(r)[0], -r.info.edge_id)  # noqa: E731  (ties: id ascending)
        page = _page_rows(rows, key, w.order, w)
        return Page(tuple(r.info for r in page), len(rows))

    def list_edge_rpcs(self, query: EdgeRPCQuery) -> Page[str]:
        self._trace("list_edge_rpcs", query)
        rows = self._matching_edges(query.meta, query.edge_id, query.window)
        seen = _first_seen((r.info.created_at, r.rpcs) for r in rows)
        return _page_names(seen, query.window.order, query.window)

    # -- services --------------------------------------------------------------------

    def get_service(self, service_id: int) -> Optional[ServiceInfo]:
        row = self._services.get(service_id)
        return row.info if row is not None else None

    def _matching_services(self, name: Optional[str], service_id: Optional[int], w: Window) -> list[_ServiceRow]:
        with self._lock:
            if service_id is not None:
                row = self._services.get(service_id)
                rows = [row] if row is not None else []
            else:
                rows = list(self._services.values())
        return [r for r in rows if _prefix(r.name, name) and _in_window(r.info.created_at, w)]

    def list_services(self, query: ServiceQuery) -> Page[ServiceInfo]:
        self._trace("list_services", query)
        w = query.window
        rows = [
            r
            for r in self._matching_services(query.service, query.service_id, w)
            if _prefix(r.addr, query.addr)
            and (query.rpc is None or query.rpc in r.rpcs)
            and (query.topic is None or query.topic in r.topics)
        ]
        key = _SERVICE_KEYS[w.order.field]
        if w.order.desc:
            inner = key
            key = lambda r: (inner(r)[0], -r.info.service_id)  # noqa: E731
        page = _page_rows(rows, key, w.order, w)
        return Page(tuple(r.info for r in page), len(rows))

    def list_service_rpcs(self, query: ServiceNamesQuery) -> Page[str]:
        self._trace("list_service_rpcs", query)
        rows = self._matching_services(query.service, query.service_id, query.window)
        seen = _first_seen((r.info.created_at, r.rpcs) for r in rows)
        return _page_names(seen, query.window.order, query.window)

    def list_service_topics(self, query: ServiceNamesQuery) -> Page[str]:
        self._trace("list_service_topics", query)
        rows = self._matching_services(query.service, query.service_id, query.window)
        seen = _first_seen((r.info.created_at, r.topics) for r in rows)
        return _page_names(seen, query.window.order, query.window)

    def counts(self) -> tuple[int, int]:
        return len(self._edges), len(self._services)

    def close(self) -> None:
        with self._lock:
            self._edges.clear()
            self._services.clear()


#: ascending sort keys; the id in second place breaks ties
_EDGE_KEYS: dict[str, Callable[[_EdgeRow], tuple]] = {
    "create_time": lambda r: (r.info.created_at, r.info.edge_id),
    "edge_id": lambda r: (r.info.edge_id, r.info.edge_id),
    "meta": lambda r: (r.meta, r.info.edge_id),
    "addr": lambda r: (r.addr, r.info.edge_id),
}
_SERVICE_KEYS: dict[str, Callable[[_ServiceRow], tuple]] = {
    "create_time": lambda r: (r.info.created_at, r.info.service_id),
    "service_id": lambda r: (r.info.service_id, r.info.service_id),
    "service": lambda r: (r.name, r.info.service_id),
    "addr": lambda r: (r.addr, r.info.service_id),
}
