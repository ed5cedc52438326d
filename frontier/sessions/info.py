"""What the gateway knows about each connected edge and service.

These frozen snapshots are what the gateway hands to observers (the control-plane
query store, the Frontlas reporter): plain data, no sockets, safe to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from frontier.sessions.bans import Ban


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
    """Operator actions on connections: kicks (through the normal offline path) and
    edge bans (:mod:`frontier.sessions.bans`)."""

    def kick_edge(self, edge_id: int, reconnect: bool = True) -> bool:
        """Close the edge's connection, telling it to come back after the gateway's
        kick delay (``reconnect``) or not at all; ``False`` if no such edge is online."""
        ...

    def kick_service(self, service_id: int, reconnect: bool = True) -> bool:
        """Close the service's connection, as ``kick_edge``; ``False`` if not online."""
        ...

    def ban_edge(self, edge_id: int, seconds: float, reason: str = "") -> "Ban":
        """Refuse ``edge_id`` for ``seconds`` (closing it if online)."""
        ...

    def lift_ban(self, edge_id: int) -> bool:
        """End ``edge_id``'s ban; ``False`` if it had none."""
        ...

    def list_bans(self) -> list["Ban"]:
        """The bans in force, soonest to end first."""
        ...
