"""What the gateway knows about each connected edge and service.

These frozen snapshots are what the gateway hands to observers (the control-plane
query store, the Frontlas reporter): plain data, no sockets, safe to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EdgeInfo:
    """One online edge: its id, the meta it connected with, where from, since when."""

    edge_id: int
    meta: bytes
    addr: str
    created_at: float  #: unix time (seconds) of the handshake
    rpcs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One online service connection and what it registered."""

    service_id: int
    name: str
    addr: str
    created_at: float  #: unix time (seconds) of the handshake
    rpcs: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


class SessionObserver(Protocol):
    """Told of every edge and service coming, changing and going.

    Called from the gateway's greenlets; implementations must not block.
    ``*_updated`` is sent when a connection registers more RPCs or topics.
    """

    def edge_online(self, edge: EdgeInfo) -> None: ...
    def edge_updated(self, edge: EdgeInfo) -> None: ...
    def edge_offline(self, edge: EdgeInfo) -> None: ...
    def service_online(self, service: ServiceInfo) -> None: ...
    def service_updated(self, service: ServiceInfo) -> None: ...
    def service_offline(self, service: ServiceInfo) -> None: ...


class Kicker(Protocol):
    """Forces a connection offline through the normal offline path."""

    def kick_edge(self, edge_id: int) -> bool:
        """Close the edge's connection; ``False`` if no such edge is online."""
        ...

    def kick_service(self, service_id: int) -> bool:
        """Close the service's connection; ``False`` if no such service is online."""
        ...
