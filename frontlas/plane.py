"""The frontier plane (port 40012): frontiers report here over frontier's own protocol.

Each connection is a :class:`frontier.sessions.session.Session` driven by
:class:`PlaneDispatcher`, which admits edge-role clients (frontiers; see
:mod:`frontier.cluster.protocol`) and answers their ``Request``s from the
:class:`~frontlas.store.ClusterStore`, each in a greenlet of its own, at most
``limits.max_inflight`` at once per connection. Nothing is kept in memory across
connections: a frontier may reconnect to any Frontlas instance.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from typing import Any, Callable

import gevent
from gevent.pool import Pool

from frontier.cluster import protocol as P
from frontier.listeners import GuardedStreamServer
from frontier.server import server_ssl_context
from frontier.sessions import reader
from frontier.sessions.session import ROLE_EDGE, Session
from frontier.wire.errors import ErrorCode, FrontierError, InvalidArgument
from frontier.wire.events import (
    Ack, Event, Hello, Ping, Pong, Publish, Request, Response, StreamOpen, StreamReset, Welcome,
)

from .config import FrontlasConfig
from .store import ClusterStore

log = logging.getLogger("frontlas.plane")


class PlaneDispatcher:
    """Admits frontiers and runs their requests against the store."""

    def __init__(self, store: ClusterStore, config: FrontlasConfig) -> None:
        self.store = store
        self.config = config
        self.sessions: set[Session] = set()
        self._ids = itertools.count(1)
        self._pools: dict[Session, Pool] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            P.REGISTER: self._register, P.SYNC: self._sync, P.REPORT: self._report, P.UNREGISTER: self._unregister,
        }

    # -- Dispatcher ------------------------------------------------------------------------

    def admit(self, session: Session, hello: Hello) -> None:
        """Accept an edge-role client; its ``meta`` names the frontier (for logs only)."""
        if hello.role != ROLE_EDGE:
            session.close(ErrorCode.REFUSED, "the frontier plane takes frontiers (edge role) only")
            return
        try:
            meta = P.unpack(hello.meta) if hello.meta else {}
            session.name = str(meta.get("frontier_id", "")) if isinstance(meta, dict) else ""
        except Exception:
            session.name = ""
        session.id = next(self._ids)
        session.online = True
        self.sessions.add(session)
        self._pools[session] = Pool(self.config.limits.max_inflight)
        lim = self.config.limits
        session.send(Welcome(session.id, lim.max_frame_size, float(lim.heartbeat_interval), 1 << 16, lim.max_inflight))
        log.info("frontier %s connected from %s", session.name or "?", session.addr)

    def dispatch(self, session: Session, event: Event) -> None:
        """Requests run in their own greenlet; pings are answered; the rest is refused."""
        etype = type(event)
        if etype is Request:
            pool = self._pools.get(session)
            if pool is None or pool.full():
                session.send(Response(event.call_id, ErrorCode.BUFFER_FULL, b"", "too many requests in flight"))
                return
            pool.spawn(self._run, session, event)
        elif etype is Ping:
            session.send(Pong(event.nonce))
        elif etype is Publish:
            session.send(Ack(event.msg_id, ErrorCode.TOPIC_NOT_ONLINE, "Frontlas takes no messages"))
        elif etype is StreamOpen:
            session.send(StreamReset(event.stream_id, ErrorCode.SERVICE_NOT_ONLINE, "Frontlas takes no streams"))
        # Pong, Cancel (requests are short), Response/Ack (we send no requests): nothing to do

    def closed(self, session: Session) -> None:
        """Forget the connection; what it reported stays in Redis until its TTL."""
        self.sessions.discard(session)
        pool = self._pools.pop(session, None)
        if pool is not None:
            pool.kill(block=False)
        if session.online:
            log.info("frontier %s disconnected (%s)", session.name or "?", session.addr)
        session.online = False

    # -- requests ----------------------------------------------------------------------------

    def _run(self, session: Session, req: Request) -> None:
        handler = self._handlers.get(req.method)
        try:
            if handler is None:
                raise FrontierError(f"Frontlas has no method {req.method!r}", code=ErrorCode.RPC_NOT_ONLINE)
            try:
                body = P.unpack(req.data)
            except Exception as exc:
                raise InvalidArgument(f"{req.method}: the body is not msgpack: {exc}") from None
            if not isinstance(body, dict):
                raise InvalidArgument(f"{req.method}: the body must be a map")
            answer = Response(req.call_id, 0, P.pack(handler(body)))
        except FrontierError as exc:
            if exc.code == ErrorCode.BROKER_UNAVAILABLE:
                log.warning("frontier %s: %s", session.name or "?", exc.message)
            answer = Response(req.call_id, exc.code, b"", exc.message)
        except Exception as exc:  # a bug must still answer the frontier
            log.exception("frontier %s: %s failed", session.name or "?", req.method)
            answer = Response(req.call_id, ErrorCode.INTERNAL, b"", f"{type(exc).__name__}: {exc}")
        session.send(answer)

    def _register(self, body: dict[str, Any]) -> dict[str, Any]:
        inst = _instance(body)
        status, value = self.store.register(inst)
        exp = self.config.frontier_plane.expiration
        if status == P.CONFLICT:
            log.warning("frontier %s refused: another live frontier holds this id for %ss more", inst.frontier_id, value)
            return {"status": status, "retry_after": max(1, value)}
        log.info("frontier %s registered (service %s, edge %s)", inst.frontier_id, inst.advertised_sb_addr, inst.advertised_eb_addr)
        return {
            "status": status, "heartbeat": self.config.heartbeat,
            "expiration": {"frontier_meta": exp.frontier_meta, "edge_meta": exp.edge_meta, "service_meta": exp.service_meta},
        }

    def _sync(self, body: dict[str, Any]) -> dict[str, Any]:
        fid, session, seq = _identity(body)
        applied = self.store.sync(fid, session, seq, first=bool(body.get("first")), last=bool(body.get("last")),
                                  edges=_rows(body, "edges", 3), services=_rows(body, "services", 6))
        return {"status": applied.status, "edge_count": applied.edge_count, "service_count": applied.service_count}

    def _report(self, body: dict[str, Any]) -> dict[str, Any]:
        fid, session, seq = _identity(body)
        applied = self.store.report(
            fid, session, seq, edges_on=_rows(body, "edges_on", 3), edges_off=_ids(body, "edges_off"),
            services_on=_rows(body, "services_on", 6), services_off=_ids(body, "services_off"),
        )
        return {"status": applied.status, "edge_count": applied.edge_count, "service_count": applied.service_count}

    def _unregister(self, body: dict[str, Any]) -> dict[str, Any]:
        fid = _fid(body)
        session = _str(body, "session")
        gone = self.store.unregister(fid, session)
        log.info("frontier %s unregistered%s", fid, "" if gone else " (it was not registered)")
        return {"status": P.OK if gone else P.UNKNOWN}


# -- body checks ------------------------------------------------------------------------------


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name} must be a non-empty string")
    return value


def _fid(body: dict[str, Any]) -> str:
    try:
        return P.check_frontier_id(body.get("frontier_id"))
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _instance(body: dict[str, Any]) -> P.Instance:
    return P.Instance(_fid(body), _str(body, "session"), _str(body, "advertised_sb_addr"), _str(body, "advertised_eb_addr"))


def _identity(body: dict[str, Any]) -> tuple[str, str, int]:
    seq = body.get("seq")
    if type(seq) is not int or seq <= 0:
        raise InvalidArgument("seq must be a positive integer")
    return _fid(body), _str(body, "session"), seq


def _rows(body: dict[str, Any], name: str, width: int) -> list[list[Any]]:
    rows = body.get(name) or []
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= width and type(r[0]) is int for r in rows):
        raise InvalidArgument(f"{name} must be a list of rows of {width} values starting with an integer id")
    return rows


def _ids(body: dict[str, Any], name: str) -> list[int]:
    ids = body.get(name) or []
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise InvalidArgument(f"{name} must be a list of integer ids")
    return ids


class FrontierPlane:
    """The listener frontiers dial, with its dispatcher and a reaper of silent connections."""

    def __init__(self, store: ClusterStore, config: FrontlasConfig) -> None:
        self.config = config
        self.dispatcher = PlaneDispatcher(store, config)
        self._server: GuardedStreamServer | None = None
        self._reaper: gevent.Greenlet | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        assert self._server is not None
        return self._server.address[:2]

    def start(self) -> None:
        """Bind and serve in background greenlets."""
        listen = self.config.frontier_plane.listen
        kwargs: dict[str, Any] = {}
        ctx = server_ssl_context(listen.tls)
        if ctx is not None:
            kwargs["ssl_context"] = ctx
        self._server = GuardedStreamServer(listen.host_port, self._handle, backlog=1024, **kwargs)
        self._server.max_open = self.config.limits.max_connections
        self._server.port_name = "frontier plane"
        self._server.start()
        self._reaper = gevent.spawn(self._reap)
        log.info("frontier plane on %s:%d%s", *self.address, " (TLS)" if ctx else "")

    def stop(self) -> None:
        """Stop accepting and close every frontier connection (they reconnect elsewhere)."""
        if self._server is not None:
            self._server.close()
        if self._reaper is not None:
            self._reaper.kill(block=False)
        for session in list(self.dispatcher.sessions):
            session.close(ErrorCode.GOING_AWAY, "Frontlas is stopping")

    @property
    def serving(self) -> bool:
        """True while the listener accepts."""
        return self._server is not None and self._server.started

    def _handle(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lim = self.config.limits
        session = Session(sock, addr, ROLE_EDGE, max_frame_size=lim.max_frame_size, max_out_bytes=64 * 1048576)
        reader.serve(session, self.dispatcher, lim.handshake_timeout)

    def _reap(self) -> None:
        limit = 3 * self.config.limits.heartbeat_interval
        while True:
            gevent.sleep(min(1.0, limit / 3))
            now = time.monotonic()
            for session in list(self.dispatcher.sessions):
                if now - session.last_rx > limit:
                    session.close(ErrorCode.TIMEOUT, f"no heartbeat for {limit:.0f}s")

