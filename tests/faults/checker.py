"""The checker: what a scenario's history says about the cluster's promises.

Inputs are the JSON-lines histories of the load drivers (``start``/``end`` of every
operation, ``effect`` of every receiver) and of the harness (``scenario`` phases,
``own`` samples of which frontier holds which edge, ``agree`` results comparing
Frontlas' map with the nodes). For one scenario it checks:

1. nothing that returned success lost its effect: each successful call ran its
   handler, each acked publish reached its receiver, each stream delivered the
   checksum its opener sent; and nothing took effect twice;
2. every operation ended, with success or a typed error (a ``FrontierError``), by
   its deadline plus 1 s;
3. after the heal, every service reaches every edge within 10 s (its first
   successful probe), and Frontlas' map agrees with what each node holds;
4. no edge is held by two frontiers for longer than the heartbeat window;

and, for faults that leave every client's path to its frontier intact (the
registry's faults: Frontlas or Redis, a frontier cut from them), that operations
failed only with the error types the scenario allows (none, for those).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

#: how late an operation may end past its deadline
GRACE = 1.0
#: how long after the heal every edge must be routable again
RECOVERY_LIMIT = 10.0
EFFECT_OF = {"svc_call": "call", "edge_call": "call", "probe": "call", "svc_publish": "publish",
             "edge_publish": "publish", "svc_stream": "stream", "edge_stream": "stream"}


def read_history(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every record of every file (a torn last line is skipped)."""
    out = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


@dataclass
class Result:
    """One scenario's row of the table, and what broke which promise."""

    scenario: str
    operations: int = 0
    failures: collections.Counter = field(default_factory=collections.Counter)
    longest_recovery: float | None = None
    longest_double_owner: float = 0.0
    longest_outage: float = 0.0
    violations: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        fails = ", ".join(f"{k} {v}" for k, v in self.failures.most_common()) or "-"
        rec = "-" if self.longest_recovery is None else f"{self.longest_recovery:.1f}s"
        return [self.scenario, str(self.operations), fails, f"{self.longest_outage:.1f}s", rec, f"{self.longest_double_owner:.1f}s",
                str(len(self.violations)) if self.violations else "ok"]


HEADER = ["scenario", "ops", "failures by error type", "longest outage", "longest recovery", "double owner", "violations"]


def table(results: list[Result]) -> str:
    """The results as a plain-text table."""
    rows = [HEADER] + [r.row() for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check(records: list[dict[str, Any]], scenario: str, *, owner_window: float,
          allowed: frozenset[str] | None = None) -> Result:
    """Check one scenario; ``owner_window`` is the longest double ownership allowed,
    ``allowed`` the error types operations may fail with (None: any typed error)."""
    result = Result(scenario)
    phases = {r["phase"]: r["ts"] for r in records if r.get("t") == "scenario" and r.get("name") == scenario}
    start, heal, end = phases.get("start"), phases.get("heal", phases.get("end")), phases.get("end")
    if start is None or heal is None or end is None:
        result.violations.append(f"the harness did not record the phases of {scenario}: {sorted(phases)}")
        return result
    starts = {r["op"]: r for r in records if r.get("t") == "start" and start <= r["ts"] <= end}
    ends = {r["op"]: r for r in records if r.get("t") == "end" and r["op"] in starts}
    effects: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in records:
        if r.get("t") == "effect" and r["op"] in starts:
            effects[r["op"]].append(r)
    result.operations = len(starts)
    _check_operations(result, starts, ends, effects)
    _check_recovery(result, starts, ends, heal, end)
    if allowed is not None:
        unexpected = {k: v for k, v in result.failures.items() if k not in allowed}
        if unexpected:
            result.violations.append(f"(0) this fault leaves the data plane intact, yet operations failed: {unexpected}")
    for r in records:
        if r.get("t") == "agree" and r.get("scenario") == scenario and not r["ok"]:
            result.violations.append(f"(3) Frontlas' map disagrees with the nodes {r['after']:.1f}s after the heal: {r['detail']}")
    for r in records:
        if r.get("t") == "error" and r.get("scenario") == scenario:
            result.violations.append(f"the scenario did not complete: {r['detail']}")
    _check_owners(result, [r for r in records if r.get("t") == "own" and start <= r["ts"] <= end], owner_window)
    return result


def _check_operations(result: Result, starts: dict[str, Any], ends: dict[str, Any], effects: dict[str, list[Any]]) -> None:
    for op, begun in starts.items():
        ran = [e for e in effects.get(op, ()) if e["what"] == EFFECT_OF[begun["kind"]]]
        if len(ran) > 1:  # the cluster never retries what may have been delivered
            result.violations.append(f"(1) {begun['kind']} {op} took effect {len(ran)} times")
        done = ends.get(op)
        if done is None:
            result.violations.append(f"(2) {begun['kind']} {op} never ended")
            result.failures["never ended"] += 1
            continue
        late = done["ts"] - begun["ts"] - begun["deadline"]
        if late > GRACE:
            result.violations.append(f"(2) {begun['kind']} {op} ended {late:.2f}s after its deadline ({done.get('error') or 'ok'})")
        if not done["ok"]:
            result.failures[done["error"]] += 1
            if not done.get("typed"):
                result.violations.append(f"(2) {begun['kind']} {op} failed with an untyped {done['error']}: {done.get('msg')}")
            continue
        want = EFFECT_OF[begun["kind"]]
        seen = [e for e in effects.get(op, ()) if e["what"] == want]
        if not seen:
            result.violations.append(f"(1) {begun['kind']} {op} succeeded but its receiver never saw it")
        elif want == "stream" and not any(e.get("sha") == done.get("sha") for e in seen):
            result.violations.append(f"(1) {begun['kind']} {op} succeeded but the acceptor read other bytes")


def _check_recovery(result: Result, starts: dict[str, Any], ends: dict[str, Any], heal: float, end: float) -> None:
    first_ok: dict[tuple[str, int], float] = {}
    pairs: set[tuple[str, int]] = set()
    probes: dict[tuple[str, int], list[tuple[float, float, bool]]] = collections.defaultdict(list)
    for op, begun in starts.items():
        if begun["kind"] != "probe":
            continue
        pair = (op.split("-")[0], begun["edge"])
        pairs.add(pair)
        done = ends.get(op)
        ok = done is not None and done["ok"]
        probes[pair].append((begun["ts"], done["ts"] if done is not None else end, ok))
        if ok and begun["ts"] >= heal:
            first_ok[pair] = min(first_ok.get(pair, done["ts"]), done["ts"])
    result.longest_outage = max((_longest_outage(p) for p in probes.values()), default=0.0)
    worst = 0.0
    for pair in sorted(pairs):
        if pair not in first_ok:
            result.violations.append(f"(3) service {pair[0]} never reached edge {pair[1]} after the heal ({end - heal:.1f}s)")
            continue
        worst = max(worst, first_ok[pair] - heal)
    result.longest_recovery = worst if pairs else None
    if worst > RECOVERY_LIMIT:
        result.violations.append(f"(3) an edge was routable again only {worst:.1f}s after the heal")


def _longest_outage(probes: list[tuple[float, float, bool]]) -> float:
    """The longest a service could not reach an edge, as its probes saw it: from the
    start of a failed probe to the end of the next successful one (probes: (start,
    end, ok); a pair is probed every 0.3 s)."""
    worst, failed_at = 0.0, None
    for begun, done, ok in sorted(probes):
        if not ok and failed_at is None:
            failed_at = begun
        elif ok and failed_at is not None:
            worst = max(worst, done - failed_at)
            failed_at = None
    return worst


def _check_owners(result: Result, samples: list[dict[str, Any]], owner_window: float) -> None:
    since: dict[int, float] = {}
    longest: dict[int, float] = {}
    for sample in sorted(samples, key=lambda r: r["ts"]):
        count: collections.Counter = collections.Counter()
        for edges in sample["nodes"].values():
            count.update(edges or ())
        doubled = {e for e, n in count.items() if n > 1}
        for e in list(since):
            if e not in doubled:
                del since[e]
        for e in doubled:
            since.setdefault(e, sample["ts"])
            longest[e] = max(longest.get(e, 0.0), sample["ts"] - since[e])
    if longest:
        edge, worst = max(longest.items(), key=lambda kv: kv[1])
        result.longest_double_owner = worst
        if worst > owner_window:
            result.violations.append(f"(4) edge {edge} was held by two frontiers for {worst:.1f}s (window {owner_window:.1f}s)")


class ProbeTail:
    """Follows the services' histories live: which (service, edge) pairs had a
    successful probe started after a given time."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._offsets = {p: 0 for p in paths}
        self._starts: dict[str, tuple[float, int]] = {}
        self._ok: list[tuple[str, int, float]] = []  # (service, edge, start ts)

    def _read(self) -> None:
        for path in self.paths:
            try:
                with open(path) as f:
                    f.seek(self._offsets[path])
                    chunk = f.read()
            except FileNotFoundError:
                continue
            complete = chunk[: chunk.rfind("\n") + 1]
            self._offsets[path] += len(complete.encode())
            for line in complete.splitlines():
                r = json.loads(line)
                if r.get("t") == "start" and r.get("kind") == "probe":
                    self._starts[r["op"]] = (r["ts"], r["edge"])
                elif r.get("t") == "end" and r["ok"] and r["op"] in self._starts:
                    ts, edge = self._starts.pop(r["op"])
                    self._ok.append((r["op"].split("-")[0], edge, ts))
                elif r.get("t") == "end":
                    self._starts.pop(r["op"], None)

    def missing(self, services: list[str], edges: list[int], since: float) -> list[tuple[str, int]]:
        """Pairs with no successful probe started at or after ``since``."""
        self._read()
        seen = {(s, e) for s, e, ts in self._ok if ts >= since}
        return [(s, e) for s in services for e in edges if (s, e) not in seen]
