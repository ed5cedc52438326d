"""The accept-time guard on its own (no sockets): caps, per-IP keys, rates, bans,
exemptions, and that its memory follows the addresses active now."""

from __future__ import annotations

import dataclasses

from frontier.config import Limits
from frontier.sessions.limits import BANNED, RATE_LIMITED, TOO_MANY, TOO_MANY_FROM_IP, TOO_MANY_ON_LISTENER, ConnectionGuard, ip_key


def guard(**limits) -> ConnectionGuard:
    return ConnectionGuard(dataclasses.replace(Limits(), **limits))


def test_defaults_let_everything_in():
    g = guard()
    assert all(g.admit("edge", f"10.0.0.{i % 3}") is None for i in range(10_000))
    assert g.total == 10_000 and g.by_ip == {} and g._buckets == {}


def test_caps_count_and_release():
    g = guard(max_connections=4, max_edge_connections=3, max_connections_per_ip=2)
    assert [g.admit("edge", ip) for ip in ("1.1.1.1", "1.1.1.1", "1.1.1.1")] == [None, None, TOO_MANY_FROM_IP]
    assert g.admit("edge", "2.2.2.2") is None
    assert g.admit("edge", "3.3.3.3") == TOO_MANY_ON_LISTENER
    assert g.admit("service", "3.3.3.3") is None
    assert g.admit("service", "4.4.4.4") == TOO_MANY
    g.release("edge", "1.1.1.1")
    assert g.by_ip["1.1.1.1"] == 1 and g.admit("edge", "1.1.1.1") is None
    for role, ip in (("edge", "1.1.1.1"), ("edge", "1.1.1.1"), ("edge", "2.2.2.2"), ("service", "3.3.3.3")):
        g.release(role, ip)
    assert g.total == 0 and g.by_ip == {} and g.by_role == {"edge": 0, "service": 0}


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4():
    assert ip_key("2001:db8:1:2:aaaa::1") == ip_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert ip_key("::ffff:192.0.2.7") == "192.0.2.7"
    g = guard(max_connections_per_ip=1, exempt_ips=("192.0.2.0/24",))
    assert g.admit("edge", "2001:db8::1") is None and g.admit("edge", "2001:db8::2") == TOO_MANY_FROM_IP
    assert all(g.admit("edge", "::ffff:192.0.2.7") is None for _ in range(5))  # exempt, even mapped


def test_rate_ban_and_recovery():
    g = guard(connect_rate_per_ip=10, connect_burst_per_ip=3, ban_seconds=5)
    t = 1000.0
    assert [g.admit("edge", "9.9.9.9", now=t + i * 0.001) for i in range(4)] == [None, None, None, RATE_LIMITED]
    assert g.admit("edge", "9.9.9.9", now=t + 4.9) == BANNED  # retries do not extend the ban...
    assert g.admit("edge", "8.8.8.8", now=t + 1) is None  # ...and other addresses are unaffected
    assert g.admit("edge", "9.9.9.9", now=t + 5.01) is None  # served: a full bucket again
    assert [g.admit("edge", "9.9.9.9", now=t + 5.02) for _ in range(2)] == [None, None]


def test_sustained_rate_is_allowed_without_a_ban():
    g = guard(connect_rate_per_ip=10, connect_burst_per_ip=1, ban_seconds=60)
    assert all(g.admit("edge", "7.7.7.7", now=50.0 + i * 0.11) is None for i in range(200))


def test_prune_forgets_idle_addresses():
    g = guard(connect_rate_per_ip=100, connect_burst_per_ip=5, ban_seconds=1)
    for i in range(5000):
        assert g.admit("edge", f"10.{i // 250}.{i % 250}.1", now=10.0) is None
        g.release("edge", f"10.{i // 250}.{i % 250}.1")
    admitted = [g.admit("edge", "6.6.6.6", now=10.0) for _ in range(6)]
    assert admitted == [None] * 5 + [RATE_LIMITED]
    assert len(g._buckets) == 5001 and g.banned
    g.prune(now=100.0)
    assert list(g._buckets) == ["6.6.6.6"] and g.banned == {}  # its connections are still open
    for _ in range(5):
        g.release("edge", "6.6.6.6")
    g.prune_if_due(now=100.0 + g.prune_every)
    assert g._buckets == {} and g.by_ip == {}
