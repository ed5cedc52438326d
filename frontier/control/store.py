"""The control plane's view of who is connected: a query store fed by the gateway.

The gateway tells a :class:`QueryStore` of every edge and service coming, changing
and going (it implements :class:`~frontier.sessions.info.SessionObserver`); the
REST and gRPC front ends ask it questions (filters, order, pages, true counts).
Two backends answer identically, picked by ``dao.backend`` as in the Go frontier:

* ``buntdb`` / ``memory`` (default): plain dicts; every update is O(1), a list
  query scans the connections once (O(n log k) for a page of k);
* ``sqlite3``: an in-memory SQLite database with indexes, for heavier querying.

Observer calls never raise into the gateway (errors are logged) and never wait on
I/O. One connection's ``*_online``/``*_updated``/``*_offline`` calls must carry
the same ``created_at`` and ``addr``: a late ``*_offline`` of an old connection
then leaves alone the newer connection that took over its id (a duplicate edge).
"""

from __future__ import annotations

import abc
import logging
from typing import Optional

from frontier.control.query import EdgeQuery, EdgeRPCQuery, Page, ServiceNamesQuery, ServiceQuery
from frontier.sessions.info import EdgeInfo, ServiceInfo
from frontier.wire.errors import ConfigError

log = logging.getLogger(__name__)

#: ``dao.backend`` values and the store class each selects
MEMORY_BACKENDS = ("buntdb", "memory")
SQLITE_BACKENDS = ("sqlite3", "sqlite")


def _same_connection(a: EdgeInfo | ServiceInfo, b: EdgeInfo | ServiceInfo) -> bool:
    return a.addr == b.addr and a.created_at == b.created_at


class QueryStore(abc.ABC):
    """Online edges and services, kept in step with the sessions, answering queries.

    Subclasses implement the ``_put_*``/``_drop_*`` primitives and the queries;
    this base class holds the observer rules (upsert on online, update only the
    same live connection, drop only the same connection) and error containment.
    """

    #: the backend name this store answers to (``"memory"``, ``"sqlite3"``)
    backend: str = ""
    #: log every query (``dao.debug``)
    debug: bool = False

    def _trace(self, what: str, query: object) -> None:
        if self.debug:
            log.debug("query store (%s): %s %r", self.backend, what, query)

    # -- SessionObserver -------------------------------------------------------

    def edge_online(self, edge: EdgeInfo) -> None:
        """An edge finished its handshake; replaces any record with the same id."""
        self._observe("edge_online", self._put_edge, edge)

    def edge_updated(self, edge: EdgeInfo) -> None:
        """An edge registered more RPCs; ignored unless that connection is stored."""
        self._observe("edge_updated", self._update_edge, edge)

    def edge_offline(self, edge: EdgeInfo) -> None:
        """An edge's connection closed; a newer connection with its id is kept."""
        self._observe("edge_offline", self._offline_edge, edge)

    def service_online(self, service: ServiceInfo) -> None:
        """A service connection finished its handshake."""
        self._observe("service_online", self._put_service, service)

    def service_updated(self, service: ServiceInfo) -> None:
        """A service registered more RPCs or topics."""
        self._observe("service_updated", self._update_service, service)

    def service_offline(self, service: ServiceInfo) -> None:
        """A service connection closed."""
        self._observe("service_offline", self._offline_service, service)

    def _observe(self, what: str, fn, info) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(info)
        except Exception:  # an observer must never break the gateway's session code
            log.exception("query store (%s): %s(%r) failed", self.backend, what, info)

    def _update_edge(self, edge: EdgeInfo) -> None:
        old = self.get_edge(edge.edge_id)
        if old is not None and _same_connection(old, edge):
            self._put_edge(edge)

    def _offline_edge(self, edge: EdgeInfo) -> None:
        old = self.get_edge(edge.edge_id)
        if old is not None and _same_connection(old, edge):
            self._drop_edge(edge.edge_id)

    def _update_service(self, service: ServiceInfo) -> None:
        old = self.get_service(service.service_id)
        if old is not None and _same_connection(old, service):
            self._put_service(service)

    def _offline_service(self, service: ServiceInfo) -> None:
        old = self.get_service(service.service_id)
        if old is not None and _same_connection(old, service):
            self._drop_service(service.service_id)

    # -- primitives --------------------------------------------------------------

    @abc.abstractmethod
    def _put_edge(self, edge: EdgeInfo) -> None: ...

    @abc.abstractmethod
    def _drop_edge(self, edge_id: int) -> None: ...

    @abc.abstractmethod
    def _put_service(self, service: ServiceInfo) -> None: ...

    @abc.abstractmethod
    def _drop_service(self, service_id: int) -> None: ...

    # -- queries ------------------------------------------------------------------

    @abc.abstractmethod
    def get_edge(self, edge_id: int) -> Optional[EdgeInfo]:
        """The online edge with that id, or ``None``."""

    @abc.abstractmethod
    def list_edges(self, query: EdgeQuery) -> Page[EdgeInfo]:
        """One page of matching edges and the number of all matches."""

    @abc.abstractmethod
    def list_edge_rpcs(self, query: EdgeRPCQuery) -> Page[str]:
        """One page of the distinct RPC names registered by matching edges."""

    @abc.abstractmethod
    def get_service(self, service_id: int) -> Optional[ServiceInfo]:
        """The online service connection with that id, or ``None``."""

    @abc.abstractmethod
    def list_services(self, query: ServiceQuery) -> Page[ServiceInfo]:
        """One page of matching services and the number of all matches."""

    @abc.abstractmethod
    def list_service_rpcs(self, query: ServiceNamesQuery) -> Page[str]:
        """One page of the distinct RPC names registered by matching services."""

    @abc.abstractmethod
    def list_service_topics(self, query: ServiceNamesQuery) -> Page[str]:
        """One page of the distinct topics declared by matching services."""

    @abc.abstractmethod
    def counts(self) -> tuple[int, int]:
        """``(edges, services)`` online now."""

    def close(self) -> None:
        """Release what the store holds; it answers nothing afterwards."""


def make_store(backend: str, *, debug: bool = False) -> QueryStore:
    """The query store for a ``dao.backend`` value: ``buntdb``/``memory`` or ``sqlite3``.

    ``debug`` (``dao.debug``) logs every query at DEBUG level on this module's logger.
    """
    name = (backend or "buntdb").strip().lower()
    if name in MEMORY_BACKENDS:
        from frontier.control.memory_store import MemoryStore

        return MemoryStore(debug=debug)
    if name in SQLITE_BACKENDS:
        from frontier.control.sqlite_store import SqliteStore

        return SqliteStore(debug=debug)
    raise ConfigError(
        f"dao.backend: unknown backend {backend!r}; use one of "
        f"{', '.join(MEMORY_BACKENDS + SQLITE_BACKENDS)}"
    )
