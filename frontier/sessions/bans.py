"""Edge bans set by an operator: an edge id refused at admission until a time.

A ban is an explicit action with a duration (the control plane's ``BanEdge``),
separate from a kick. It is checked once the edge's id is known, before any
``edge_online`` hook runs, and refused with ``BANNED`` plus the time left, which
the SDK waits out, asking again once a minute in case an operator lifted the ban
(``Client.ban_recheck``). Bans live in this gateway's memory: they do
not survive a restart and do not reach the other frontiers of a cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from frontier.wire.errors import Banned, InvalidArgument

#: the longest ban, in seconds (a year)
MAX_BAN_SECONDS = 365 * 86400.0
#: most bans held at once (an operator script gone wrong must not exhaust memory)
MAX_BANS = 100_000


@dataclass(frozen=True, slots=True)
class Ban:
    """One banned edge id: until when (unix time) and why."""

    edge_id: int
    until: float
    reason: str = ""
    created_at: float = 0.0

    def remaining(self, now: float) -> float:
        """Seconds left (0 once over)."""
        return max(0.0, self.until - now)


class EdgeBans:
    """The bans of one gateway; expired ones are dropped as they are met."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._bans: dict[int, Ban] = {}

    def add(self, edge_id: int, seconds: float, reason: str = "") -> Ban:
        """Ban ``edge_id`` for ``seconds`` (replacing a ban it had); InvalidArgument
        for a duration out of (0, a year] or past :data:`MAX_BANS` bans."""
        if not 0 < seconds <= MAX_BAN_SECONDS:
            raise InvalidArgument(f"duration: {seconds!r} is out of range (0, {MAX_BAN_SECONDS:.0f}] seconds")
        now = self._clock()
        if edge_id not in self._bans and len(self._bans) >= MAX_BANS:
            self._prune(now)
            if len(self._bans) >= MAX_BANS:
                raise InvalidArgument(f"too many bans ({MAX_BANS}); lift some first")
        ban = self._bans[edge_id] = Ban(edge_id, now + seconds, reason, now)
        return ban

    def lift(self, edge_id: int) -> bool:
        """End a ban; False if ``edge_id`` had none in force."""
        ban = self._bans.pop(edge_id, None)
        return ban is not None and ban.remaining(self._clock()) > 0

    def get(self, edge_id: int) -> Ban | None:
        """The ban in force on ``edge_id``, if any."""
        if not self._bans:  # (every connect asks)
            return None
        ban = self._bans.get(edge_id)
        if ban is None:
            return None
        if ban.remaining(self._clock()) <= 0:
            del self._bans[edge_id]
            return None
        return ban

    def check(self, edge_id: int) -> None:
        """Raise :class:`Banned` (with ``retry_after``) if ``edge_id`` is banned."""
        ban = self.get(edge_id)
        if ban is not None:
            left = ban.remaining(self._clock())
            why = f": {ban.reason}" if ban.reason else ""
            raise Banned(f"edge {edge_id} is banned for {left:.0f}s more{why}", retry_after=left)

    def active(self) -> list[Ban]:
        """The bans in force, soonest to end first."""
        self._prune(self._clock())
        return sorted(self._bans.values(), key=lambda b: (b.until, b.edge_id))

    def _prune(self, now: float) -> None:
        for edge_id in [e for e, b in self._bans.items() if b.until <= now]:
            del self._bans[edge_id]
