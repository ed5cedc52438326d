"""The ``dao.backend: sqlite3`` query store: an in-memory SQLite database.

Text that is filtered or sorted on is stored as UTF-8 BLOBs, so SQLite compares
bytes (``memcmp``), which for valid UTF-8 is the same order as Python's ``str``
comparison, and a prefix test is the index-friendly range ``prefix <= col < next(prefix)``: results match the
memory backend exactly. Ids are unsigned 64-bit; SQLite integers are signed, so
each id is stored shifted by ``-2**63`` (order-preserving).

One connection, guarded by a lock that is held only for a statement or a short
write transaction; under gevent no statement yields, so nothing ever queues.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Optional, Sequence

from frontier.control.query import (
    INT64_MAX,
    EdgeQuery,
    EdgeRPCQuery,
    Page,
    ServiceNamesQuery,
    ServiceQuery,
    Window,
    text_of,
)
from frontier.control.store import QueryStore, log
from frontier.sessions.info import EdgeInfo, ServiceInfo

_SHIFT = 2**63

_SCHEMA = """
CREATE TABLE edges (
    edge_key   INTEGER PRIMARY KEY,   -- edge_id - 2**63
    meta       BLOB NOT NULL,         -- UTF-8 of the text form, for filters and order
    meta_raw   BLOB NOT NULL,         -- the bytes the edge sent
    addr       BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX idx_edges_meta ON edges(meta);
CREATE INDEX idx_edges_addr ON edges(addr);
CREATE INDEX idx_edges_created_at ON edges(created_at);
CREATE TABLE edge_rpcs (
    edge_key INTEGER NOT NULL,
    pos      INTEGER NOT NULL,        -- position in EdgeInfo.rpcs
    rpc      BLOB NOT NULL,
    PRIMARY KEY (edge_key, pos)
);
CREATE INDEX idx_edge_rpcs_rpc ON edge_rpcs(rpc);
CREATE TABLE services (
    service_key INTEGER PRIMARY KEY,
    name        BLOB NOT NULL,
    addr        BLOB NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX idx_services_name ON services(name);
CREATE INDEX idx_services_addr ON services(addr);
CREATE INDEX idx_services_created_at ON services(created_at);
CREATE TABLE service_rpcs (
    service_key INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    rpc         BLOB NOT NULL,
    PRIMARY KEY (service_key, pos)
);
CREATE INDEX idx_service_rpcs_rpc ON service_rpcs(rpc);
CREATE TABLE service_topics (
    service_key INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    topic       BLOB NOT NULL,
    PRIMARY KEY (service_key, pos)
);
CREATE INDEX idx_service_topics_topic ON service_topics(topic);
"""

#: order field -> SQL column, per list
_EDGE_COLUMNS = {"create_time": "e.created_at", "edge_id": "e.edge_key", "meta": "e.meta", "addr": "e.addr"}
_SERVICE_COLUMNS = {
    "create_time": "s.created_at",
    "service_id": "s.service_key",
    "service": "s.name",
    "addr": "s.addr",
}


def _b(text: str) -> bytes:
    return text_of(text).encode("utf-8")


def _s(blob: bytes) -> str:
    return bytes(blob).decode("utf-8")


def _after_prefix(prefix: bytes) -> Optional[bytes]:
    """The least byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None  # only b"" or all-0xff: no upper bound
    return stripped[:-1] + bytes([stripped[-1] + 1])


class _Where:
    """AND-ed SQL conditions and their parameters, built up one filter at a time."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.params: list[Any] = []

    def add(self, term: str, *params: Any) -> None:
        self.terms.append(term)
        self.params.extend(params)

    def prefix(self, column: str, value: Optional[str]) -> None:
        """``column`` starts with ``value``, as an index-friendly byte range."""
        if value is None:
            return
        low = _b(value)
        self.add(f"{column} >= ?", low)
        high = _after_prefix(low)
        if high is not None:
            self.add(f"{column} < ?", high)

    def window(self, column: str, w: Window) -> None:
        if w.start_time is not None:
            self.add(f"{column} >= ?", float(w.start_time))
        if w.end_time is not None:
            self.add(f"{column} < ?", float(w.end_time))

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.terms)) if self.terms else ""


def _limit(w: Window) -> tuple[int, int]:
    return w.page_size, min(w.offset, INT64_MAX)


class SqliteStore(QueryStore):
    """In-memory SQLite store (``dao.backend: sqlite3``)."""

    backend = "sqlite3"

    def __init__(self, *, debug: bool = False) -> None:
        self.debug = debug
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        if debug:
            self._db.set_trace_callback(lambda sql: log.debug("query store (sqlite3): %s", sql))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]], many: Sequence[tuple[str, list]]) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                for sql, params in statements:
                    db.execute(sql, params)
                for sql, rows in many:
                    if rows:
                        db.executemany(sql, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- primitives ------------------------------------------------------------------

    def _put_edge(self, edge: EdgeInfo) -> None:
        key = edge.edge_id - _SHIFT
        meta = bytes(edge.meta)
        self._write(
            [
                ("DELETE FROM edge_rpcs WHERE edge_key = ?", (key,)),
                (
                    "INSERT OR REPLACE INTO edges (edge_key, meta, meta_raw, addr, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key, text_of(meta).encode("utf-8"), meta, _b(edge.addr), float(edge.created_at)),
                ),
            ],
            [
                (
                    "INSERT INTO edge_rpcs (edge_key, pos, rpc) VALUES (?, ?, ?)",
                    [(key, i, _b(rpc)) for i, rpc in enumerate(edge.rpcs)],
                )
            ],
        )

    def _drop_edge(self, edge_id: int) -> None:
        key = edge_id - _SHIFT
        self._write(
            [("DELETE FROM edges WHERE edge_key = ?", (key,)), ("DELETE FROM edge_rpcs WHERE edge_key = ?", (key,))],
            [],
        )

    def _put_service(self, service: ServiceInfo) -> None:
        key = service.service_id - _SHIFT
        self._write(
            [
                ("DELETE FROM service_rpcs WHERE service_key = ?", (key,)),
                ("DELETE FROM service_topics WHERE service_key = ?", (key,)),
                (
                    "INSERT OR REPLACE INTO services (service_key, name, addr, created_at) VALUES (?, ?, ?, ?)",
                    (key, _b(service.name), _b(service.addr), float(service.created_at)),
                ),
            ],
            [
                (
                    "INSERT INTO service_rpcs (service_key, pos, rpc) VALUES (?, ?, ?)",
                    [(key, i, _b(rpc)) for i, rpc in enumerate(service.rpcs)],
                ),
                (
                    "INSERT INTO service_topics (service_key, pos, topic) VALUES (?, ?, ?)",
                    [(key, i, _b(topic)) for i, topic in enumerate(service.topics)],
                ),
            ],
        )

    def _drop_service(self, service_id: int) -> None:
        key = service_id - _SHIFT
        self._write(
            [
                ("DELETE FROM services WHERE service_key = ?", (key,)),
                ("DELETE FROM service_rpcs WHERE service_key = ?", (key,)),
                ("DELETE FROM service_topics WHERE service_key = ?", (key,)),
            ],
            [],
        )

    # -- record assembly ---------------------------------------------------------------

    def _names(self, table: str, column: str, key_column: str, keys: list[int]) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {k: [] for k in keys}
        if keys:
            marks = ",".join("?" * len(keys))
            sql = f"SELECT {key_column}, {column} FROM {table} WHERE {key_column} IN ({marks}) ORDER BY {key_column}, pos"
            for key, name in self._rows(sql, keys):
                out[key].append(_s(name))
        return {k: tuple(v) for k, v in out.items()}

    def _edges_of(self, rows: list[tuple]) -> tuple[EdgeInfo, ...]:
        rpcs = self._names("edge_rpcs", "rpc", "edge_key", [r[0] for r in rows])
        return tuple(
            EdgeInfo(
                edge_id=key + _SHIFT,
                meta=bytes(meta_raw),
                addr=_s(addr),
                created_at=created_at,
                rpcs=rpcs[key],
            )
            for key, meta_raw, addr, created_at in rows
        )

    def _services_of(self, rows: list[tuple]) -> tuple[ServiceInfo, ...]:
        keys = [r[0] for r in rows]
        rpcs = self._names("service_rpcs", "rpc", "service_key", keys)
        topics = self._names("service_topics", "topic", "service_key", keys)
        return tuple(
            ServiceInfo(
                service_id=key + _SHIFT,
                name=_s(name),
                addr=_s(addr),
                created_at=created_at,
                rpcs=rpcs[key],
                topics=topics[key],
            )
            for key, name, addr, created_at in rows
        )

    # -- edges --------------------------------------------------------------------------

    def get_edge(self, edge_id: int) -> Optional[EdgeInfo]:
        rows = self._rows(
            "SELECT edge_key, meta_raw, addr, created_at FROM edges WHERE edge_key = ?", (edge_id - _SHIFT,)
        )
        return self._edges_of(rows)[0] if rows else None

    def _edge_where(self, meta: Optional[str], edge_id: Optional[int], w: Window) -> _Where:
        where = _Where()
        where.prefix("e.meta", meta)
        if edge_id is not None:
            where.add("e.edge_key = ?", edge_id - _SHIFT)
        where.window("e.created_at", w)
        return where

    def list_edges(self, query: EdgeQuery) -> Page[EdgeInfo]:
        w = query.window
        where = self._edge_where(query.meta, query.edge_id, w)
        where.prefix("e.addr", query.addr)
        if query.rpc is not None:
            where.add("EXISTS (SELECT 1 FROM edge_rpcs r WHERE r.edge_key = e.edge_key AND r.rpc = ?)", _b(query.rpc))
        direction = "DESC" if w.order.desc else "ASC"
        sql = (
            "SELECT e.edge_key, e.meta_raw, e.addr, e.created_at FROM edges e"
            + where.sql()
            + f" ORDER BY {_EDGE_COLUMNS[w.order.field]} {direction}, e.edge_key ASC LIMIT ? OFFSET ?"
        )
        rows = self._rows(sql, [*where.params, *_limit(w)])
        (count,) = self._rows("SELECT COUNT(*) FROM edges e" + where.sql(), where.params)[0]
        return Page(self._edges_of(rows), count)

    def list_edge_rpcs(self, query: EdgeRPCQuery) -> Page[str]:
        where = self._edge_where(query.meta, query.edge_id, query.window)
        source = "FROM edge_rpcs x JOIN edges e ON e.edge_key = x.edge_key" + where.sql()
        return self._names_page(source, "x.rpc", "e.created_at", where.params, query.window)

    # -- services -----------------------------------------------------------------------

    def get_service(self, service_id: int) -> Optional[ServiceInfo]:
        rows = self._rows(
            "SELECT service_key, name, addr, created_at FROM services WHERE service_key = ?",
            (service_id - _SHIFT,),
        )
        return self._services_of(rows)[0] if rows else None

    def _service_where(self, name: Optional[str], service_id: Optional[int], w: Window) -> _Where:
        where = _Where()
        where.prefix("s.name", name)
        if service_id is not None:
            where.add("s.service_key = ?", service_id - _SHIFT)
        where.window("s.created_at", w)
        return where

    def list_services(self, query: ServiceQuery) -> Page[ServiceInfo]:
        w = query.window
        where = self._service_where(query.service, query.service_id, w)
        where.prefix("s.addr", query.addr)
        if query.rpc is not None:
            where.add(
                "EXISTS (SELECT 1 FROM service_rpcs r WHERE r.service_key = s.service_key AND r.rpc = ?)",
                _b(query.rpc),
            )
        if query.topic is not None:
            where.add(
                "EXISTS (SELECT 1 FROM service_topics t WHERE t.service_key = s.service_key AND t.topic = ?)",
                _b(query.topic),
            )
        direction = "DESC" if w.order.desc else "ASC"
        sql = (
            "SELECT s.service_key, s.name, s.addr, s.created_at FROM services s"
            + where.sql()
            + f" ORDER BY {_SERVICE_COLUMNS[w.order.field]} {direction}, s.service_key ASC LIMIT ? OFFSET ?"
        )
        rows = self._rows(sql, [*where.params, *_limit(w)])
        (count,) = self._rows("SELECT COUNT(*) FROM services s" + where.sql(), where.params)[0]
        return Page(self._services_of(rows), count)

    def list_service_rpcs(self, query: ServiceNamesQuery) -> Page[str]:
        where = self._service_where(query.service, query.service_id, query.window)
        source = "FROM service_rpcs x JOIN services s ON s.service_key = x.service_key" + where.sql()
        return self._names_page(source, "x.rpc", "s.created_at", where.params, query.window)

    def list_service_topics(self, query: ServiceNamesQuery) -> Page[str]:
        where = self._service_where(query.service, query.service_id, query.window)
        source = "FROM service_topics x JOIN services s ON s.service_key = x.service_key" + where.sql()
        return self._names_page(source, "x.topic", "s.created_at", where.params, query.window)

    def _names_page(self, source: str, name: str, created_at: str, params: list[Any], w: Window) -> Page[str]:
        """Distinct names; ``create_time`` is the earliest owner's; ties by name ascending."""
        direction = "DESC" if w.order.desc else "ASC"
        order = f"first_seen {direction}, name ASC" if w.order.field == "create_time" else f"name {direction}"
        sql = f"SELECT {name} AS name, MIN({created_at}) AS first_seen {source} GROUP BY {name} ORDER BY {order} LIMIT ? OFFSET ?"
        rows = self._rows(sql, [*params, *_limit(w)])
        (count,) = self._rows(f"SELECT COUNT(DISTINCT {name}) {source}", params)[0]
        return Page(tuple(_s(r[0]) for r in rows), count)

    def counts(self) -> tuple[int, int]:
        (edges,) = self._rows("SELECT COUNT(*) FROM edges")[0]
        (services,) = self._rows("SELECT COUNT(*) FROM services")[0]
        return edges, services

    def close(self) -> None:
        with self._lock:
            self._db.close()
