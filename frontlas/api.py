"""What the cluster API answers, independent of REST or gRPC.

:class:`ClusterAPI` turns the Go ``ClusterService`` calls into store reads and
raises the project's errors (``EdgeNotOnline``, ``ServiceNotOnline``,
``InvalidArgument``, ``BrokerUnavailable``); :func:`http_status` and
:func:`grpc_status_name` map those for the two front ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Optional, Sequence, TypeVar

from frontier.control.service import grpc_status_name as _cp_grpc_status, http_status as _cp_http_status
from frontier.wire.errors import EdgeNotOnline, ErrorCode, FrontierError, InvalidArgument, ServiceNotOnline

from .store import ClusterStore, EdgeRecord, FrontierRecord, ServiceRecord

T = TypeVar("T")

#: items per page when a list call gives a cursor but no count, or neither
DEFAULT_COUNT = 100
#: the largest count a list call accepts
MAX_COUNT = 10000
#: the most ids one list call may ask for
MAX_IDS = 10000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of a list call; ``cursor`` is None when the call did not page."""

    items: list[Optional[T]]
    cursor: Optional[int] = None


def http_status(err: FrontierError) -> int:
    """The HTTP status of ``err`` (Redis down is 503)."""
    if err.code == ErrorCode.BROKER_UNAVAILABLE:
        return 503
    return _cp_http_status(err)


def grpc_status_name(err: FrontierError) -> str:
    """The ``grpc.StatusCode`` name of ``err`` (Redis down is UNAVAILABLE)."""
    if err.code == ErrorCode.BROKER_UNAVAILABLE:
        return "UNAVAILABLE"
    return _cp_grpc_status(err)


def _window(cursor: Optional[int], count: Optional[int]) -> tuple[int, int]:
    cursor = 0 if cursor is None else cursor
    count = DEFAULT_COUNT if not count else count
    if cursor < 0:
        raise InvalidArgument(f"cursor: expected >= 0, got {cursor}")
    if not 0 < count <= MAX_COUNT:
        raise InvalidArgument(f"count: expected 1..{MAX_COUNT}, got {count}")
    return cursor, count


def _ids(name: str, ids: Sequence[Any]) -> list[Any]:
    if len(ids) > MAX_IDS:
        raise InvalidArgument(f"{name}: at most {MAX_IDS} ids, got {len(ids)}")
    return list(ids)


class ClusterAPI:
    """The eight ``ClusterService`` calls over a :class:`ClusterStore`."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    # -- frontiers ---------------------------------------------------------------------

    def get_frontier_by_edge(self, edge_id: int) -> FrontierRecord:
        """The frontier holding ``edge_id``; ``EdgeNotOnline`` if none does."""
        edge = self.store.find_edge(edge_id)
        if edge is not None:
            frontier = self.store.frontiers_by_id([edge.frontier_id])[0]
            if frontier is not None:
                return frontier
        raise EdgeNotOnline(f"edge {edge_id} is not online on any live frontier")

    def list_frontiers(self, cursor: Optional[int] = None, count: Optional[int] = None,
                       edge_ids: Sequence[int] = (), frontier_ids: Sequence[str] = ()) -> Page[FrontierRecord]:
        """Live frontiers: all, one page, those of ``edge_ids`` (in order) or those named."""
        if cursor is not None or count is not None:
            start, count = _window(cursor, count)
            live = [f for f in self.store.frontiers() if f.ordinal >= start]
            page = live[:count]
            return Page(list(page), live[count].ordinal if len(live) > count else 0)
        if edge_ids:
            edges = self.store.find_edges(_ids("edge_ids", edge_ids))
            fids = [e.frontier_id for e in edges if e is not None]
            by_id = dict(zip(fids, self.store.frontiers_by_id(fids)))
            return Page([by_id.get(e.frontier_id) if e is not None else None for e in edges])
        if frontier_ids:
            return Page([f for f in self.store.frontiers_by_id(_ids("frontier_ids", frontier_ids)) if f is not None])
        return Page(list(self.store.frontiers()))

    # -- edges ---------------------------------------------------------------------------

    def list_edges(self, cursor: Optional[int] = None, count: Optional[int] = None,
                   edge_ids: Sequence[int] = ()) -> Page[EdgeRecord]:
        """Edges by id (in order), or one page of all of them."""
        if edge_ids and cursor is None and count is None:
            return Page(self.store.find_edges(_ids("edge_ids", edge_ids)))
        start, count = _window(cursor, count)
        items, next_cursor = self.store.scan_edges(start, count)
        return Page(list(items), next_cursor)

    def get_edge(self, edge_id: int) -> EdgeRecord:
        """One edge; ``EdgeNotOnline`` if no live frontier holds it."""
        edge = self.store.find_edge(edge_id)
        if edge is None:
            raise EdgeNotOnline(f"edge {edge_id} is not online on any live frontier")
        return edge

    def edges_count(self) -> int:
        """Edges on all live frontiers."""
        return self.store.count_edges()

    # -- services --------------------------------------------------------------------------

    def list_services(self, cursor: Optional[int] = None, count: Optional[int] = None,
                      service_ids: Sequence[int] = ()) -> Page[ServiceRecord]:
        """Services by id (in order), or one page of all of them."""
        if service_ids and cursor is None and count is None:
            return Page(self.store.find_services(_ids("service_ids", service_ids)))
        start, count = _window(cursor, count)
        items, next_cursor = self.store.scan_services(start, count)
        return Page(list(items), next_cursor)

    def get_service(self, service_id: int, frontier_id: Optional[str] = None) -> ServiceRecord:
        """One service connection (ids are per frontier: name the frontier to be sure)."""
        found = self.store.find_services([service_id], frontier_id or None)[0]
        if found is None:
            where = f" on frontier {frontier_id}" if frontier_id else ""
            raise ServiceNotOnline(f"service {service_id} is not online{where}")
        return found

    def services_count(self) -> int:
        """Service connections on all live frontiers."""
        return self.store.count_services()

    # -- health ------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """True if Redis answers."""
        return self.store.ping()


# -- JSON shapes (REST) ------------------------------------------------------------------------


def frontier_json(f: Optional[FrontierRecord]) -> Optional[dict[str, Any]]:
    """A frontier as REST shows it."""
    if f is None:
        return None
    return {
        "frontier_id": f.frontier_id, "advertised_sb_addr": f.advertised_sb_addr,
        "advertised_eb_addr": f.advertised_eb_addr, "edge_count": f.edge_count,
        "service_count": f.service_count, "update_time": f.update_time,
    }


def edge_json(e: Optional[EdgeRecord]) -> Optional[dict[str, Any]]:
    """An edge as REST shows it."""
    if e is None:
        return None
    return {"edge_id": e.edge_id, "addr": e.addr, "update_time": e.update_time, "frontier_id": e.frontier_id}


def service_json(s: Optional[ServiceRecord]) -> Optional[dict[str, Any]]:
    """A service as REST shows it."""
    if s is None:
        return None
    return {
        "service": s.service, "addr": s.addr, "update_time": s.update_time, "frontier_id": s.frontier_id,
        "service_id": s.service_id, "rpcs": list(s.rpcs), "topics": list(s.topics),
    }
