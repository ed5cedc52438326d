"""Serving an edge that is connected to another frontier of the cluster.

When the edge is not connected here, the ingress asks Frontlas's REST API which
frontier holds it (``GET /cluster/v1/frontier?edge_id=``; answers are cached for
:attr:`Relay.lookup_ttl` seconds) and opens the stream there instead: it connects to
that frontier's service listener as an authenticated service named
``$expose:<target>`` (one connection per frontier and target, kept) and opens an
ordinary service-to-edge stream, which that frontier splices to the edge like any
other. The HTTP request itself is still handled here: auth, headers, errors.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from frontier.sdk.cluster import frontier_of_edge
from frontier.sdk.service import Service
from frontier.sdk.stream import Stream
from frontier.wire.errors import ConnectionClosed, EdgeNotOnline, FrontierError
from frontier.wire.events import EXPOSE_PREFIX

log = logging.getLogger("frontier.ingress.relay")


class StreamPipe:
    """An SDK :class:`~frontier.sdk.stream.Stream` as a :class:`~frontier.ingress.pipes.Pipe`."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    @property
    def failed(self) -> bool:
        """True once the stream was reset or its connection lost."""
        return self.stream._error is not None

    def sendall(self, data: bytes, timeout: float | None = None) -> None:
        """Send every byte, waiting for credit up to ``timeout`` per wait."""
        self.stream.settimeout(timeout)
        self.stream.sendall(data)

    def recv(self, bufsize: int, timeout: float | None = None) -> bytes:
        """Some bytes, ``b""`` at the end."""
        self.stream.settimeout(timeout)
        return self.stream.recv(bufsize)

    def shutdown_write(self) -> None:
        """Half-close."""
        self.stream.shutdown_write()

    def close(self) -> None:
        """Close both directions."""
        self.stream.close()


class Relay:
    """Opens streams to edges held by other frontiers (see the module docstring)."""

    #: seconds a Frontlas answer (which frontier holds an edge) is reused
    lookup_ttl = 5.0

    def __init__(self, frontlas_api: str, credentials: str) -> None:
        self.frontlas_api = frontlas_api
        self._credentials = credentials
        self._where: dict[int, tuple[float, str | None]] = {}  # edge id -> (until, service addr)
        self._links: dict[tuple[str, str], Service] = {}

    def open(self, edge_id: int, target: str, timeout: float) -> StreamPipe:
        """A stream to ``edge_id``'s exposed ``target`` through the frontier holding it;
        raises ``EdgeNotOnline`` when no frontier does, or the far side's typed error."""
        addr = self._lookup(edge_id, timeout)
        if addr is None:
            raise EdgeNotOnline(f"edge {edge_id} is not online on any frontier of the cluster")
        service = self._link(addr, target, timeout)
        try:
            stream = service.open_stream(edge_id, timeout=timeout)
        except ConnectionClosed:
            self._drop(addr, target, service)
            raise
        except EdgeNotOnline:
            self._where.pop(edge_id, None)  # it moved: ask Frontlas again next time
            raise
        return StreamPipe(stream)

    def _lookup(self, edge_id: int, timeout: float) -> str | None:
        now = time.monotonic()
        cached = self._where.get(edge_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        info = frontier_of_edge(self.frontlas_api, edge_id, timeout=min(timeout, 5.0))
        addr = info.advertised_sb_addr if info is not None and info.advertised_sb_addr else None
        if len(self._where) > 10000:
            self._where.clear()
        self._where[edge_id] = (now + self.lookup_ttl, addr)
        return addr

    def _link(self, addr: str, target: str, timeout: float) -> Service:
        key = (addr, target)
        service = self._links.get(key)
        if service is not None:
            return service
        service = Service(addr, name=EXPOSE_PREFIX + target, credentials=self._credentials, timeout=timeout,
                          reconnect=True)
        existing = self._links.setdefault(key, service)
        if existing is not service:  # another greenlet connected meanwhile
            service.close()
        log.info("relay: connected to frontier %s for %r", addr, target)
        return existing

    def _drop(self, addr: str, target: str, service: Service) -> None:
        if self._links.get((addr, target)) is service:
            del self._links[(addr, target)]
        try:
            service.close()
        except FrontierError:
            pass

    def close(self) -> None:
        """Close every relay connection."""
        links, self._links = self._links, {}
        for service in links.values():
            try:
                service.close()
            except FrontierError:
                pass
