"""The edges and services the test driver puts in its store (tests assert against these)."""

from __future__ import annotations

from frontier.sessions.info import EdgeInfo, ServiceInfo

T0 = 1_700_000_000


def _edge_rpcs(i: int) -> tuple[str, ...]:
    if i % 4 == 0:
        return ("echo", "reboot")
    if i % 2:
        return ("echo",)
    return ()


#: 12 edges: ids 1..12, meta dev-1..dev-8 then sensor-9..sensor-12, one every 10 s
EDGES: tuple[EdgeInfo, ...] = tuple(
    EdgeInfo(
        edge_id=i,
        meta=(f"dev-{i}" if i <= 8 else f"sensor-{i}").encode(),
        addr=f"10.0.{i // 10}.{i}:{5000 + i}",
        created_at=T0 + 10 * i + 0.5,
        rpcs=_edge_rpcs(i),
    )
    for i in range(1, 13)
)

#: 5 service connections
SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo(101, "billing", "10.1.0.1:6001", T0 + 1.0, ("pay", "refund"), ("orders",)),
    ServiceInfo(102, "billing", "10.1.0.2:6002", T0 + 2.0, ("pay", "refund"), ("orders",)),
    ServiceInfo(103, "audit", "10.1.0.3:6003", T0 + 3.0, (), ("orders", "logs")),
    ServiceInfo(104, "billing-eu", "10.2.0.4:6004", T0 + 4.0, ("pay",), ()),
    ServiceInfo(105, "chat", "10.2.0.5:6005", T0 + 5.0, ("say",), ("messages",)),
)
