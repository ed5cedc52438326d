"""Admission at accept time: connection caps and per-IP connect rates with bans.

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
import socket
import struct
import time
from typing import Any

log = logging.getLogger("frontier.limits")

#: refusal reasons (metric label values)
TOO_MANY = "max_connections"
TOO_MANY_ON_LISTENER = "max_listener_connections"
TOO_MANY_FROM_IP = "max_ip_connections"
RATE_LIMITED = "rate_limited"
BANNED = "banned"
REASONS = (TOO_MANY, TOO_MANY_ON_LISTENER, TOO_MANY_FROM_IP, RATE_LIMITED, BANNED)

_LINGER_NOW = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s


def close_refused(sock: socket.socket) -> None:
    """Close a refused socket with a reset (RST): no goodbye, no TIME_WAIT left behind."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
    except OSError:
        pass
    sock.close()


def ip_key(ip: str) -> str:
    """The key per-IP limits count under: the address, or its /64 for IPv6."""
    if ":" not in ip:
        return ip
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if addr.version == 6 and addr.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr.ipv4_mapped or addr)


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
