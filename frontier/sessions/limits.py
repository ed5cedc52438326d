"""Admission at accept time (connection caps, per-IP connect rates with bans) and
each connection's own frame and byte rates once it is in.

:class:`ConnectionGuard` answers one question per accepted socket, before any byte
is read or any TLS handshake starts: may this connection stay? It keeps counts per
listener, in total and per source IP, a token bucket per source IP, and the IPs
banned for connecting faster than allowed (a flapping client: a crash loop, a
reconnect bug, a flood). Dict work only: no syscalls, nothing per frame. IPv6
addresses are counted by their /64, which one host usually holds whole.

A refused connection is closed without a frame (as at ``max_connections``); the
reason is counted in ``frontier_connections_refused_total`` and a ban is logged once.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from frontier.wire.events import ROLE_EDGE

log = logging.getLogger("frontier.limits")

#: refusal reasons (metric label values)
TOO_MANY = "max_connections"
TOO_MANY_ON_LISTENER = "max_listener_connections"
TOO_MANY_FROM_IP = "max_ip_connections"
RATE_LIMITED = "rate_limited"
BANNED = "banned"
REASONS = (TOO_MANY, TOO_MANY_ON_LISTENER, TOO_MANY_FROM_IP, RATE_LIMITED, BANNED)


def ip_key(ip: str) -> str:
    """The key per-IP limits count under: the address, or its /64 for IPv6."""
    if ":" not in ip:
        return ip
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        if mapped is None:
            return str(ipaddress.ip_network(f"{addr}/64", strict=False))
        return str(mapped)
    return str(addr)


class ConnectionGuard:
    """Connection caps and per-IP rates of one gateway (see the module docstring).

    ``limits`` is the config's ``limits`` section; ``roles`` the listener names.
    """

    #: seconds between sweeps that forget idle per-IP records
    prune_every = 10.0

    def __init__(self, limits: Any, roles: tuple[str, ...] = ("service", "edge")) -> None:
        self.max_total = limits.max_connections
        self.max_by_role = {"edge": limits.max_edge_connections, "service": limits.max_service_connections}
        self.max_per_ip = limits.max_connections_per_ip
        self.rate = float(limits.connect_rate_per_ip)
        self.burst = float(limits.connect_burst_per_ip)
        self.ban_seconds = float(limits.ban_seconds)
        self._exempt = tuple(ipaddress.ip_network(n, strict=False) for n in limits.exempt_ips)
        self._exempt_cache: dict[str, bool] = {}
        self._per_ip_on = bool(self.max_per_ip or self.rate)
        self.total = 0
        self.by_role: dict[str, int] = {role: 0 for role in roles}
        self.by_ip: dict[str, int] = {}
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill]
        self.banned: dict[str, float] = {}  # key -> monotonic time the ban ends
        self._pruned = time.monotonic()

    def admit(self, role: str, ip: str, now: float | None = None) -> str | None:
        """Count a new connection and return None, or return why it must be closed
        (then nothing was counted). Pair every None with :meth:`release`."""
        if self.max_total and self.total >= self.max_total:
            return TOO_MANY
        cap = self.max_by_role.get(role, 0)
        if cap and self.by_role.get(role, 0) >= cap:
            return TOO_MANY_ON_LISTENER
        key = None
        if self._per_ip_on and not self._is_exempt(ip):
            key = ip_key(ip)
            if now is None:
                now = time.monotonic()
            reason = self._check_ip(key, now)
            if reason is not None:
                return reason
            self.by_ip[key] = self.by_ip.get(key, 0) + 1
        self.total += 1
        self.by_role[role] = self.by_role.get(role, 0) + 1
        return None

    def release(self, role: str, ip: str) -> None:
        """The connection :meth:`admit` let in has closed."""
        self.total -= 1
        self.by_role[role] -= 1
        if self._per_ip_on and not self._is_exempt(ip):
            key = ip_key(ip)
            left = self.by_ip.get(key, 0) - 1
            if left > 0:
                self.by_ip[key] = left
            else:
                self.by_ip.pop(key, None)

    def _is_exempt(self, ip: str) -> bool:
        if not self._exempt:
            return False
        known = self._exempt_cache.get(ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(ip.split("%", 1)[0])
                if addr.version == 6 and addr.ipv4_mapped is not None:
                    addr = addr.ipv4_mapped  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
                known = any(addr in net for net in self._exempt)
            except ValueError:
                known = False
            if len(self._exempt_cache) > 4096:
                self._exempt_cache.clear()
            self._exempt_cache[ip] = known
        return known

    def _check_ip(self, key: str, now: float) -> str | None:
        until = self.banned.get(key)
        if until is not None:
            if now < until:
                return BANNED
            del self.banned[key]
            self._buckets.pop(key, None)  # a ban served starts afresh
        if self.max_per_ip and self.by_ip.get(key, 0) >= self.max_per_ip:
            return TOO_MANY_FROM_IP
        if self.rate:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [self.burst, now]
            else:
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] < 1.0:
                if self.ban_seconds:
                    self.banned[key] = now + self.ban_seconds
                    log.warning("banning %s for %.0fs: more than %g new connections per second (burst %d)",
                                key, self.ban_seconds, self.rate, self.burst)
                return RATE_LIMITED
            bucket[0] -= 1.0
        return None

    def prune_if_due(self, now: float) -> None:
        """:meth:`prune`, at most every :attr:`prune_every` seconds (call it often)."""
        if now - self._pruned >= self.prune_every:
            self.prune(now)

    def prune(self, now: float | None = None) -> None:
        """Forget buckets that refilled and bans that ended, so memory follows the
        IPs active now, not every IP ever seen."""
        now = time.monotonic() if now is None else now
        self._pruned = now
        if self.rate:
            full_after = self.burst / self.rate
            for key in [k for k, (tokens, last) in self._buckets.items() if now - last >= full_after and k not in self.by_ip]:
                del self._buckets[key]
        for key in [k for k, until in self.banned.items() if until <= now]:
            del self.banned[key]


class ConnectionRate:
    """Token buckets for one connection's frames/s and bytes/s (either may be off).

    The reader charges what it read at the end of each turn (a bounded batch, see
    :class:`~frontier.sessions.session.Session`); :meth:`charge` answers how long to
    pause before reading on. Pausing is the throttle: the peer's own sends block in
    TCP, nothing is lost, and nobody else pays. A connection throttled again and
    again for ``grace`` seconds, without slowing down enough to refill half its
    buckets in between, is a violation (:meth:`violated`).
    Burst: one second's worth of each rate.
    """

    __slots__ = ("frame_rate", "byte_rate", "grace", "frames", "bytes", "stamp", "over_since")

    #: the longest single pause, in seconds (the reaper and closes stay responsive)
    max_pause = 0.5

    def __init__(self, frame_rate: float, byte_rate: float, grace: float, now: float) -> None:
        self.frame_rate = float(frame_rate)
        self.byte_rate = float(byte_rate)
        self.grace = grace
        self.frames = self.frame_rate  # tokens left
        self.bytes = self.byte_rate
        self.stamp = now
        self.over_since = 0.0  #: when the current run of throttled turns began (0: not throttled)

    @classmethod
    def for_role(cls, limits: Any, role: str, now: float) -> "ConnectionRate | None":
        """The limiter for a connection of ``role``, or None when both its rates are off."""
        if role == ROLE_EDGE:  # (plain attributes: a name built per connect cost more than the limiter)
            frames, nbytes = limits.edge_frames_per_second, limits.edge_bytes_per_second
        else:
            frames, nbytes = limits.service_frames_per_second, limits.service_bytes_per_second
        if not frames and not nbytes:
            return None
        return cls(frames, nbytes, limits.rate_limit_grace, now)

    def charge(self, frames: int, nbytes: int, now: float) -> float:
        """Take ``frames`` and ``nbytes`` from the buckets; return seconds to pause (0: none)."""
        elapsed = now - self.stamp
        self.stamp = now
        pause = 0.0
        if self.frame_rate:
            self.frames = min(self.frame_rate, self.frames + elapsed * self.frame_rate) - frames
            if self.frames < 0:
                pause = -self.frames / self.frame_rate
        if self.byte_rate:
            self.bytes = min(self.byte_rate, self.bytes + elapsed * self.byte_rate) - nbytes
            if self.bytes < 0:
                pause = max(pause, -self.bytes / self.byte_rate)
        if pause:
            if not self.over_since:
                self.over_since = now
        elif self.over_since and self._recovered():
            self.over_since = 0.0
        return min(pause, self.max_pause)

    def _recovered(self) -> bool:
        """Back under the rate for a while: each bucket in use is at least half full
        again (a throttled flooder keeps them near empty)."""
        return (not self.frame_rate or self.frames >= self.frame_rate / 2) and (
            not self.byte_rate or self.bytes >= self.byte_rate / 2)

    def violated(self, now: float) -> bool:
        """True once the connection has been throttled without a break for ``grace`` seconds."""
        return bool(self.over_since) and now - self.over_since >= self.grace
