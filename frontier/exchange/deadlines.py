"""The deadlines of calls and publishes in flight: one libev timer for all of them.

A timer object per call (created, started, closed) cost a routed call about 3,000
instructions; here a call's deadline is an entry in the bucket of the tick it falls
in (:data:`TICK`, 10 ms), and one one-shot timer waits for the earliest
bucket. An answer removes its entry; a bucket whose tick came hands every entry left
to ``expire``. A deadline fires up to one tick late, never early.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from typing import Any, Callable, Final

from frontier.sessions.session import Session
from frontier.wire.events import WireId

#: a bucket: the gateway's call id -> the session the call was sent to
Bucket = dict[WireId, Session]
_monotonic: Final = time.monotonic
#: seconds per bucket: how late a deadline may fire
TICK: Final = 0.01
log = logging.getLogger("frontier.exchange")


class CallDeadlines:
    """Deadlines by tick; ``expire(target, gid)`` runs, in the hub, for each call
    still in its bucket when the bucket's tick has passed. ``timer`` makes a libev
    one-shot timer from a delay in seconds (the hub loop's ``timer``)."""

    def __init__(self, expire: Callable[[Session, WireId], None], timer: Callable[[float], Any]) -> None:
        self._expire = expire
        self._make_timer = timer
        self._buckets: dict[int, Bucket] = {}
        self._slots: list[int] = []  #: heap of the buckets' ticks
        self._timer: Any = None  #: armed for ``_armed_slot`` while any bucket exists
        self._armed_slot = 0

    def add(self, target: Session, gid: WireId, due: float) -> Bucket:
        """Expire call ``gid`` sent to ``target`` at ``due`` (``time.monotonic``), unless
        it is :meth:`cancel`-led first; returns the bucket to cancel it from."""
        slot = math.ceil(due / TICK)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = {}
            heapq.heappush(self._slots, slot)
            if self._timer is None or slot < self._armed_slot:
                self._arm(slot)
        bucket[gid] = target
        return bucket

    @staticmethod
    def cancel(bucket: Bucket | None, gid: WireId) -> None:
        """Call ``gid`` was answered (or given up): it no longer expires."""
        if bucket is not None and gid in bucket:  # (compiled, cheaper than a pop with a default)
            del bucket[gid]

    def __len__(self) -> int:
        """Calls still waiting for their deadline."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.close()
        self._armed_slot = slot
        self._timer = timer = self._make_timer(max(slot * TICK - _monotonic(), 0.0))
        timer.start(self._fire)

    def _fire(self) -> None:
        self._timer.close()
        self._timer = None
        now_slot = math.floor(_monotonic() / TICK)
        slots, buckets = self._slots, self._buckets
        try:
            while slots and slots[0] <= now_slot:
                bucket = buckets.pop(heapq.heappop(slots))
                for gid, target in list(bucket.items()):  # an expiry may cancel others of the bucket
                    if bucket.pop(gid, None) is not None:
                        self._expire_one(target, gid)
        finally:
            # (an expiry may have added a bucket, and armed for it)
            if slots and (self._timer is None or slots[0] < self._armed_slot):
                self._arm(slots[0])

    def _expire_one(self, target: Session, gid: WireId) -> None:
        try:
            self._expire(target, gid)
        except Exception:  # one call's failure must not stop the others' deadlines
            log.exception("expiring call %d sent to %r failed", gid, target)
