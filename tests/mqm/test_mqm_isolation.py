"""Sinks do not hold each other up, nor the hub; building never waits for brokers."""

from __future__ import annotations

from conftest import free_port
from mqm_helpers import assert_all_ok, assert_hub_free, make_items


def test_a_stalled_broker_does_not_delay_produces_to_another_sink(redis_server, nats_server, tansu, driver):
    drv = driver()
    drv.request(
        "build",
        mqm={
            "redis": {"enable": True, "addrs": [f"127.0.0.1:{redis_server.port}"], "producer": {"channels": ["slow"]}},
            "nats": {"enable": True, "addrs": [f"127.0.0.1:{nats_server.port}"], "producer": {"subjects": ["fast.n"]}},
            "kafka": {"enable": True, "addrs": [f"127.0.0.1:{tansu.port}"], "producer": {"topics": ["fast.k"]}},
        },
    )
    # warm up every sink (connections, Kafka metadata) before the stall
    assert_all_ok(
        drv.request("produce", items=make_items("slow", [1], 1) + make_items("fast.n", [1], 1) + make_items("fast.k", [1], 1), timeout=10)
    )
    redis_server.pause()  # accepts nothing, answers nothing
    try:
        slow = make_items("slow", list(range(20)), 2)
        fast = make_items("fast.n", list(range(50)), 2) + make_items("fast.k", list(range(50)), 2)
        answer = drv.request("produce", items=slow + fast, timeout=3.0, mode="parallel")
    finally:
        redis_server.resume()
    results = answer["results"]
    slow_results, fast_results = results[: len(slow)], results[len(slow) :]
    assert all(not r["ok"] and r["error"] == "Timeout" for r in slow_results), slow_results[:3]
    assert all(r["ok"] for r in fast_results), [r for r in fast_results if not r["ok"]][:3]
    worst_fast = max(r["elapsed"] for r in fast_results)
    assert worst_fast < 0.5, f"a produce to a healthy sink took {worst_fast:.3f}s while Redis stalled"
    assert_hub_free(answer)


def test_build_with_every_broker_down_returns_at_once_and_fails_fast(driver):
    dead = free_port()
    drv = driver()
    built = drv.request(
        "build",
        mqm={
            "kafka": {"enable": True, "addrs": [f"127.0.0.1:{dead}"], "producer": {"topics": ["k"]}},
            "amqp": {"enable": True, "addrs": [f"127.0.0.1:{dead}"], "producer": {"routing_keys": ["a"]}},
            "nats": {
                "enable": True,
                "addrs": [f"127.0.0.1:{dead}"],
                "producer": {"subjects": ["n"]},
                "jetstream": {"enable": True, "name": "S", "producer": {"subjects": ["j"]}},
            },
            "nsq": {"enable": True, "addrs": [f"127.0.0.1:{dead}"], "producer": {"topics": ["q"]}},
            "redis": {"enable": True, "addrs": [f"127.0.0.1:{dead}"], "producer": {"channels": ["r"]}},
        },
    )
    assert built["elapsed"] < 0.5, built
    assert [s["broker"] for s in built["sinks"]] == ["amqp", "kafka", "nsq", "jetstream", "nats", "redis"]
    assert not any(drv.request("healthy")["healthy"].values())
    items = [{"topic": t, "edge_id": 1, "data": "x"} for t in ("k", "a", "n", "j", "q", "r")]
    answer = drv.request("produce", items=items, timeout=3.0, mode="parallel")
    for r in answer["results"]:
        assert not r["ok"] and r["error"] == "BrokerUnavailable" and r["elapsed"] < 1.0, r
    assert_hub_free(answer)
    samples = drv.request("metrics")["samples"]
    for broker in ("kafka", "amqp", "nats", "jetstream", "nsq", "redis"):
        assert samples.get(f"{broker}/error") == 1, samples
    closed = drv.request("close")
    assert closed["elapsed"] < 3, closed


def test_after_close_produce_fails_typed(redis_server, driver):
    drv = driver()
    drv.request("build", mqm={"redis": {"enable": True, "addrs": [f"127.0.0.1:{redis_server.port}"], "producer": {"channels": ["c"]}}})
    assert_all_ok(drv.request("produce", items=make_items("c", [1], 1), timeout=5))
    drv.request("close")
    result = drv.request("produce", items=make_items("c", [1], 1), timeout=5)["results"][0]
    assert not result["ok"] and result["error"] == "BrokerUnavailable" and "closed" in result["message"]
    samples = drv.request("metrics")["samples"]
    assert samples["redis/ok"] == 1 and samples["redis/error"] == 1
