"""The frontier plane: how a frontier reports to Frontlas (port 40012).

It is frontier's own wire protocol (``sdk/PROTOCOL.md``). The frontier dials
Frontlas as an *edge-role* client (``Hello.meta`` is :func:`pack` of
:class:`Instance`, for Frontlas' logs) and sends ``Request`` frames whose method is
one of the names below and whose body is one msgpack map; Frontlas answers each
with a ``Response`` whose body is a msgpack map with a ``status``. Transport and
Redis failures travel as ``Response`` error codes (``BROKER_UNAVAILABLE`` when
Redis did not answer, ``INVALID_ARGUMENT`` for a malformed body).

Every state-changing call carries the frontier's ``session`` (random per frontier
process) and a ``seq`` that grows by one per call, so Frontlas applies each call at
most once and in order, even when a retry races a late copy through another
Frontlas instance. See ``docs/cluster.md`` for the whole exchange.

This module is shared by the frontier side (:mod:`frontier.cluster.reporter`) and
Frontlas (:mod:`frontlas.plane`); it imports nothing but msgpack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

#: version of the bodies below (in ``Instance.v``)
PLANE_VERSION = 1

#: ``{frontier_id, session, advertised_sb_addr, advertised_eb_addr}`` ->
#: ``{status: ok, heartbeat, expiration: {frontier_meta, edge_meta, service_meta}}``;
#: a live frontier with the same id and another session: ``status: conflict``
REGISTER = "frontlas.register"
#: ``{frontier_id, session, seq, first, last, edges, services}``: replace everything
#: Frontlas holds for this frontier by a snapshot sent in chunks (``first`` .. ``last``,
#: consecutive ``seq``); the snapshot becomes visible at once when ``last`` lands
SYNC = "frontlas.sync"
#: ``{frontier_id, session, seq, edges_on, edges_off, services_on, services_off}``:
#: what changed since the previous call; with empty lists it is a heartbeat
REPORT = "frontlas.report"
#: ``{frontier_id, session}``: a clean shutdown; the frontier vanishes at once
UNREGISTER = "frontlas.unregister"

METHODS = (REGISTER, SYNC, REPORT, UNREGISTER)

#: applied
OK = "ok"
#: this ``seq`` was applied before (a retry): nothing to do, go on
STALE = "stale"
#: Frontlas holds nothing (or something else) for this session: register and sync
UNKNOWN = "unknown"
#: another live frontier process holds this ``frontier_id``
CONFLICT = "conflict"
#: a sync chunk arrived out of order: start the sync again
ABORT = "abort"

#: an edge on the wire: ``[edge_id, addr, update_time]`` (unix seconds it came
#: online, a float: when an edge moved, the newest record wins)
EdgeRow = list
#: a service on the wire: ``[service_id, name, addr, update_time, rpcs, topics]``
ServiceRow = list


@dataclass(frozen=True, slots=True)
class Instance:
    """Who a frontier is, as it registers with Frontlas."""

    frontier_id: str
    session: str
    advertised_sb_addr: str
    advertised_eb_addr: str

    def to_dict(self) -> dict[str, Any]:
        """The msgpack map of a ``frontlas.register`` body (and ``Hello.meta``)."""
        return {
            "v": PLANE_VERSION, "frontier_id": self.frontier_id, "session": self.session,
            "advertised_sb_addr": self.advertised_sb_addr, "advertised_eb_addr": self.advertised_eb_addr,
        }


def pack(body: Any) -> bytes:
    """Encode one body."""
    return msgpack.packb(body, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode one body (raises ``ValueError``-like errors on garbage)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def check_frontier_id(frontier_id: Any) -> str:
    """A frontier id must be a non-empty string without ``{``, ``}`` or whitespace
    (Frontlas uses it as a Redis Cluster hash tag). Returns it; ``ValueError`` if not."""
    if not isinstance(frontier_id, str) or not frontier_id or len(frontier_id) > 200:
        raise ValueError(f"frontier_id must be a non-empty string of at most 200 characters, not {frontier_id!r}")
    if any(c in "{}" or c.isspace() for c in frontier_id):
        raise ValueError(f"frontier_id {frontier_id!r} may not contain braces or whitespace")
    return frontier_id
