"""The checker flags each broken promise in a history (no namespaces needed): a lost
effect, a double effect, a late or untyped end, a slow recovery, a long double
ownership, and a failure under a registry-only fault."""

from __future__ import annotations

from typing import Any

from tests.faults import checker

T0 = 1000.0


def _phases(name: str = "s") -> list[dict[str, Any]]:
    return [{"t": "scenario", "name": name, "phase": p, "ts": T0 + dt}
            for p, dt in (("start", 0), ("fault", 1), ("heal", 10), ("end", 30))]


def _op(op: str, kind: str, start: float, end: float, ok: bool = True, *, effect: int = 1, edge: int = 7,
        error: str = "Timeout", typed: bool = True, sha: str = "aa") -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = [{"t": "start", "op": op, "kind": kind, "deadline": 3.0, "edge": edge, "ts": T0 + start}]
    what = checker.EFFECT_OF[kind]
    recs += [{"t": "effect", "op": op, "what": what, "sha": sha, "ts": T0 + start + 0.01}] * effect
    end_rec: dict[str, Any] = {"t": "end", "op": op, "ok": ok, "ts": T0 + end}
    if ok:
        end_rec["sha"] = sha
    else:
        end_rec.update(error=error, typed=typed, msg="x")
    return recs + [end_rec]


def _healthy() -> list[dict[str, Any]]:
    return _phases() + _op("sa-1", "probe", 10.5, 10.6) + _op("sa-2", "svc_call", 2, 2.1)


def _check(records: list[dict[str, Any]], **kw: Any) -> checker.Result:
    return checker.check(records, "s", owner_window=4.5, **kw)


def test_a_healthy_history_passes_and_counts() -> None:
    result = _check(_healthy() + _op("sa-3", "svc_publish", 3, 5, ok=False, effect=0, error="EdgeNotOnline"))
    assert result.violations == []
    assert result.operations == 3
    assert result.failures == {"EdgeNotOnline": 1}
    assert round(result.longest_recovery or 0, 1) == 0.6


def test_a_success_without_its_effect_is_lost() -> None:
    result = _check(_healthy() + _op("sa-3", "svc_publish", 3, 3.1, effect=0))
    assert any(v.startswith("(1)") and "never saw it" in v for v in result.violations)


def test_a_stream_whose_acceptor_read_other_bytes() -> None:
    records = _healthy() + _op("sa-3", "svc_stream", 3, 3.1)
    records[-1]["sha"] = "bb"  # the opener's checksum differs from what the acceptor read
    assert any("other bytes" in v for v in _check(records).violations)


def test_an_effect_twice_is_flagged() -> None:
    assert any("2 times" in v for v in _check(_healthy() + _op("sa-3", "edge_call", 3, 3.1, effect=2)).violations)


def test_late_untyped_and_unended_operations() -> None:
    records = _healthy() + _op("sa-3", "svc_call", 3, 7.5, ok=False, effect=0)  # deadline 3 s, ended 4.5 s later
    records += _op("sa-4", "svc_call", 4, 4.1, ok=False, effect=0, error="KeyError", typed=False)
    records += [{"t": "start", "op": "sa-5", "kind": "svc_call", "deadline": 3.0, "edge": 7, "ts": T0 + 5}]
    text = "\n".join(_check(records).violations)
    assert "after its deadline" in text and "untyped KeyError" in text and "never ended" in text


def test_slow_or_missing_recovery() -> None:
    slow = _phases() + _op("sa-1", "probe", 10.5, 10.6, ok=False, effect=0) + _op("sa-2", "probe", 21, 21.1)
    result = _check(slow)
    assert any("routable again only" in v for v in result.violations)
    assert round(result.longest_outage, 1) == 10.6  # from the failed probe to the next success
    never = _phases() + _op("sa-1", "probe", 10.5, 10.6, ok=False, effect=0)
    assert any("never reached edge 7" in v for v in _check(never).violations)


def test_double_ownership_longer_than_the_window() -> None:
    samples = [{"t": "own", "ts": T0 + 2 + i * 0.5, "nodes": {"f1": [7], "f2": [7] if i < 12 else [], "f3": None}}
               for i in range(14)]
    result = _check(_healthy() + samples)
    assert round(result.longest_double_owner, 1) == 5.5
    assert any(v.startswith("(4)") for v in result.violations)


def test_a_failure_under_a_registry_fault_is_flagged() -> None:
    records = _healthy() + _op("sa-3", "svc_call", 3, 3.1, ok=False, effect=0, error="EdgeNotOnline")
    assert any(v.startswith("(0)") for v in _check(records, allowed=frozenset()).violations)
    assert _check(records, allowed=frozenset({"EdgeNotOnline"})).violations == []


def test_the_table_has_a_row_per_scenario() -> None:
    text = checker.table([_check(_healthy())])
    assert text.splitlines()[0].split()[:2] == ["scenario", "ops"]
    assert text.splitlines()[2].split()[:2] == ["s", "2"]
