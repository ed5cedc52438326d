"""``hashby``: which of several candidates takes an edge's traffic.

``edgeid`` (default): the same edge always lands on the same candidate while the set
of candidates is unchanged. ``srcip``: the same source address does. ``random``:
spread evenly. Candidates are ordered by the caller (oldest first), so the choice is
deterministic across gateways and restarts for ``edgeid``/``srcip``.
"""

from __future__ import annotations

import random
import zlib
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

HASHBY_EDGEID = "edgeid"
HASHBY_SRCIP = "srcip"
HASHBY_RANDOM = "random"
HASHBY_CHOICES = (HASHBY_EDGEID, HASHBY_SRCIP, HASHBY_RANDOM)

Picker = Callable[[Sequence[T], int, str], T]


def _by_edge_id(candidates: Sequence[T], edge_id: int, ip: str) -> T:
    return candidates[edge_id % len(candidates)]


def _by_src_ip(candidates: Sequence[T], edge_id: int, ip: str) -> T:
    return candidates[zlib.crc32(ip.encode()) % len(candidates)]


def _at_random(candidates: Sequence[T], edge_id: int, ip: str) -> T:
    return candidates[random.randrange(len(candidates))]


_PICKERS: dict[str, Picker] = {HASHBY_EDGEID: _by_edge_id, HASHBY_SRCIP: _by_src_ip, HASHBY_RANDOM: _at_random}


def picker(hashby: str) -> Picker:
    """The selection function for a ``hashby`` name: ``pick(candidates, edge_id, src_ip)``."""
    try:
        return _PICKERS[hashby]
    except KeyError:
        raise ValueError(f"hashby must be one of {', '.join(HASHBY_CHOICES)}, not {hashby!r}") from None
