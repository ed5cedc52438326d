"""Shared steps of the MQ sink tests (what every broker must do)."""

from __future__ import annotations

import time
from collections import defaultdict

#: produce results a dead or cut-off broker may give
TYPED_FAILURES = {"BrokerUnavailable", "Timeout"}
#: how late a failing produce may return past its deadline
SLACK = 0.5


def make_items(topic: str, edges: list[int], per_edge: int, **extra) -> list[dict]:
    """``per_edge`` messages per edge, data ``"e<edge>-<seq>"``, edges interleaved."""
    return [
        {"topic": topic, "edge_id": edge, "data": f"e{edge}-{seq:04d}", "addr": f"10.1.{edge % 250}.9:{4000 + edge}", **extra}
        for seq in range(per_edge)
        for edge in edges
    ]


def assert_all_ok(answer: dict) -> None:
    failed = [r for r in answer["results"] if not r["ok"]]
    assert not failed, f"{len(failed)} produces failed, first: {failed[:3]}"


def assert_hub_free(answer: dict, limit: float = 0.25) -> None:
    assert answer["hub_lag_max"] < limit, f"the gevent hub was blocked for {answer['hub_lag_max']:.3f}s"


def assert_in_order_per_edge(received: list[tuple[int, str]], items: list[dict]) -> None:
    """Every item arrived exactly once, and each edge's items in the order produced."""
    want: dict[int, list[str]] = defaultdict(list)
    for item in items:
        want[item["edge_id"]].append(item["data"])
    got: dict[int, list[str]] = defaultdict(list)
    for edge, data in received:
        got[edge].append(data)
    assert dict(got) == dict(want)


def down_then_back(driver, topic: str, stop, start, *, deadline: float = 1.5, concurrent: int = 5, **extra) -> dict:
    """Stop the broker: produces fail typed within their deadline. Start it again: a
    produce succeeds within 20 s. Returns the item that finally got through."""
    stop()
    items = [{"topic": topic, "edge_id": 900 + i, "data": f"while-down-{i}", **extra} for i in range(concurrent)]
    answer = driver.request("produce", items=items, timeout=deadline, mode="parallel")
    for r in answer["results"]:
        assert not r["ok"], f"produce succeeded with the broker down: {r}"
        assert r["error"] in TYPED_FAILURES, f"untyped failure: {r}"
        assert r["elapsed"] <= deadline + SLACK, f"failed after {r['elapsed']:.2f}s, deadline {deadline}s: {r}"
    assert_hub_free(answer)
    start()
    t = time.monotonic()
    seq = 0
    while True:
        item = {"topic": topic, "edge_id": 999, "data": f"after-restart-{seq}", **extra}
        answer = driver.request("produce", items=[item], timeout=2.0)
        result = answer["results"][0]
        if result["ok"]:
            return {"item": item, "recovered_after": time.monotonic() - t, "failed_first": answer}
        assert result["error"] in TYPED_FAILURES, f"untyped failure: {result}"
        assert time.monotonic() - t < 20, f"no successful produce 20 s after the broker came back: {result}"
        seq += 1
        time.sleep(0.2)
