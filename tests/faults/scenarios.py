"""The fault scenarios and the loop that runs them against one :class:`FaultCluster`.

Each scenario has a fault, a window (short for ``make test``, the issue's length
for ``make faults``) and a heal. Around it the runner waits for a healthy cluster,
marks the phases in the harness history, and after the heal waits (at most
:data:`~tests.faults.checker.RECOVERY_LIMIT` plus a margin) until every service
reaches every edge again and Frontlas' map agrees with the nodes.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.faults import checker
from tests.faults.cluster import EDGES, HALF_A, HALF_B, HEARTBEAT, FaultCluster
from tests.faults.load import OP_TIMEOUT

#: longest time an edge may be held by two frontiers: the gateway closes a connection
#: silent for 3 heartbeats, its reaper looks once per heartbeat, and the harness
#: samples every 0.25 s (plus a sample's own duration)
OWNER_WINDOW = 4 * HEARTBEAT + 0.5
#: seconds of load before the fault and after the recovery
LEAD, TAIL = 1.5, 1.0


@dataclass(frozen=True)
class Scenario:
    """A fault with its window: ``fault(c)``, wait, ``heal(c)``."""

    name: str
    fault: Callable[[FaultCluster], None]
    heal: Callable[[FaultCluster], None]
    short_window: float
    full_window: float
    #: error types operations may fail with (None: any typed error); the registry's
    #: faults leave every client's path to its frontier intact, so nothing may fail
    allowed: frozenset[str] | None = None
    #: only in ``make faults`` (the short run has one scenario of each kind)
    full_only: bool = False


def _cut(node: str, peers: tuple[str, ...], **direction: bool) -> Callable[[FaultCluster], None]:
    return lambda c: c.net.cut(node, list(peers), **direction)


def _split(c: FaultCluster) -> None:
    for node in HALF_B:
        c.net.cut(node, list(HALF_A))


def _unsplit(c: FaultCluster) -> None:
    for node in HALF_B:
        c.net.heal_cut(node)


def _kill_master(c: FaultCluster) -> None:
    old = c.redis_master()
    c.failed_master = old
    c.procs[old].stop(sig=signal.SIGKILL)
    c.wait("Sentinel promotes the replica", lambda: c.redis_master() != old, timeout=20, interval=0.3)


def _rejoin_master(c: FaultCluster) -> None:
    old = c.failed_master
    assert old is not None
    c.start_redis(old, replica_of=c.ip(c.redis_master()))


def _isolate_master(c: FaultCluster) -> None:
    old = c.redis_master()
    c.failed_master = old
    c.net.cut(old, [n for n in c.net.nodes if n != old])
    c.wait("Sentinel promotes the replica", lambda: c.redis_master() != old, timeout=20, interval=0.3)


def _reconnect_master(c: FaultCluster) -> None:
    assert c.failed_master is not None
    c.net.heal_cut(c.failed_master)  # Sentinel turns it into a replica of the new master


def _restart_frontlas(c: FaultCluster) -> None:
    c.start_frontlas()


SCENARIOS: list[Scenario] = [
    Scenario("f1 cut from Frontlas+Redis", _cut("f1", ("frontlas", "redis1", "redis2", "sentinel")),
             lambda c: c.net.heal_cut("f1"), 5, 15, frozenset()),
    Scenario("f2 cut from its edges", _cut("f2", ("ea", "eb")), lambda c: c.net.heal_cut("f2"), 5, 15),
    Scenario("split in two halves", _split, _unsplit, 5, 15),
    Scenario("f3 +200ms, 5% loss", lambda c: c.net.shape("f3", 200, 0.05), lambda c: c.net.unshape("f3"), 6, 20,
             frozenset({"Timeout"})),
    Scenario("f1 SIGSTOP", lambda c: c.procs["f1"].send(signal.SIGSTOP), lambda c: c.procs["f1"].send(signal.SIGCONT), 5, 20),
    Scenario("f2 kill -9", lambda c: c.procs["f2"].stop(sig=signal.SIGKILL), lambda c: c.start_frontier("f2"), 4, 10),
    Scenario("Redis master failover", _kill_master, _rejoin_master, 2, 10, frozenset()),
    Scenario("Frontlas restart", lambda c: c.procs["frontlas"].stop(sig=signal.SIGKILL), _restart_frontlas, 3, 10,
             frozenset()),
    # more of the same kinds, for make faults
    Scenario("f3 cut from Frontlas+Redis", _cut("f3", ("frontlas", "redis1", "redis2", "sentinel")),
             lambda c: c.net.heal_cut("f3"), 5, 15, frozenset(), full_only=True),
    Scenario("Frontlas cut from Redis", _cut("frontlas", ("redis1", "redis2", "sentinel")),
             lambda c: c.net.heal_cut("frontlas"), 5, 15, frozenset(), full_only=True),
    Scenario("f2 deaf to its edges (one-way)", _cut("f2", ("ea", "eb"), outbound=False),
             lambda c: c.net.heal_cut("f2"), 5, 15, full_only=True),
    Scenario("f2 mute to its edges (one-way)", _cut("f2", ("ea", "eb"), inbound=False),
             lambda c: c.net.heal_cut("f2"), 5, 15, full_only=True),
    Scenario("f2 cut from its services", _cut("f2", ("sa", "sb")), lambda c: c.net.heal_cut("f2"), 5, 15, full_only=True),
    Scenario("Frontlas SIGSTOP", lambda c: c.procs["frontlas"].send(signal.SIGSTOP),
             lambda c: c.procs["frontlas"].send(signal.SIGCONT), 5, 15, frozenset(), full_only=True),
    Scenario("Redis master partitioned away", _isolate_master,
             _reconnect_master, 3, 10, frozenset(), full_only=True),
]


def settle(c: FaultCluster, tail: checker.ProbeTail, timeout: float = 40.0) -> None:
    """Spread the edges over the frontiers (earlier faults moved them), then wait until
    Frontlas agrees with the nodes and every service reaches every edge."""
    services, edges = ["sa", "sb"], EDGES["ea"] + EDGES["eb"]
    deadline = time.monotonic() + timeout
    since = time.time()
    spread = False
    while True:
        agree, detail = c.maps_agree()
        if agree and not spread:
            spread = True
            if c.spread_edges(c.sample_owners()):
                since = time.time()
                time.sleep(1.0)
                continue
        missing = tail.missing(services, edges, since)
        if agree and spread and not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster did not settle in {timeout}s: {detail or ''} unreachable pairs {missing[:5]}")
        time.sleep(0.25)


def run_one(c: FaultCluster, sc: Scenario, tail: checker.ProbeTail, *, short: bool) -> None:
    """Run one scenario, marking its phases and the recovery in the harness history."""
    settle(c, tail)
    c.mark(t="scenario", name=sc.name, phase="start")
    time.sleep(LEAD)
    c.mark(t="scenario", name=sc.name, phase="fault")
    sc.fault(c)
    time.sleep(sc.short_window if short else sc.full_window)
    sc.heal(c)
    heal = time.time()
    c.mark(t="scenario", name=sc.name, phase="heal", ts=heal)
    services, edges = ["sa", "sb"], EDGES["ea"] + EDGES["eb"]
    limit = time.monotonic() + checker.RECOVERY_LIMIT + 5
    agreed_after: float | None = None
    detail = ""
    while time.monotonic() < limit:
        if agreed_after is None:
            agree, detail = c.maps_agree()
            if agree:
                agreed_after = time.time() - heal
        if agreed_after is not None and not tail.missing(services, edges, heal):
            break
        time.sleep(0.2)
    ok = agreed_after is not None and agreed_after <= checker.RECOVERY_LIMIT
    c.mark(t="agree", scenario=sc.name, ok=ok, after=agreed_after if agreed_after is not None else time.time() - heal,
           detail=detail)
    time.sleep(TAIL)
    c.mark(t="scenario", name=sc.name, phase="end")


def run(workdir: Path, scenarios: list[Scenario], *, short: bool) -> list[checker.Result]:
    """Start a cluster, run ``scenarios`` in turn, stop it, and check each one."""
    c = FaultCluster(workdir)
    try:
        c.start()
        tail = checker.ProbeTail([workdir / "load-sa.jsonl", workdir / "load-sb.jsonl"])
        for sc in scenarios:
            try:
                run_one(c, sc, tail, short=short)
            except Exception as exc:  # the next scenarios still run; the checker reports it
                c.mark(t="error", scenario=sc.name, detail=f"{type(exc).__name__}: {exc}")
                c.mark(t="scenario", name=sc.name, phase="end")
        time.sleep(OP_TIMEOUT + 1)  # the last operations end before the load stops
    finally:
        c.close()
    records = checker.read_history(c.history_files())
    return [checker.check(records, sc.name, owner_window=OWNER_WINDOW, allowed=sc.allowed) for sc in scenarios]
