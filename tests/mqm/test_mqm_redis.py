"""Redis sink against a private redis-server: PUBLISH and Streams (XADD)."""

from __future__ import annotations

import time

import redis

from mqm_helpers import assert_all_ok, assert_hub_free, assert_in_order_per_edge, down_then_back, make_items

EDGES = [1, 2, 3, 18446744073709551615]  # the largest uint64 edge id too


def config(port: int, channels: list[str], **producer) -> dict:
    return {"redis": {"enable": True, "addrs": [f"127.0.0.1:{port}"], "db": 0, "producer": {"channels": channels, **producer}}}


def test_publish_reaches_a_subscriber_in_order_then_survives_a_restart(redis_server, driver):
    drv = driver()
    built = drv.request("build", mqm=config(redis_server.port, ["r.events"]))
    assert built["sinks"] == [{"broker": "redis", "topics": ["r.events"]}]
    assert drv.request("wait_healthy", broker="redis")["ok"]

    sub = redis.Redis(port=redis_server.port).pubsub()
    sub.subscribe("r.events")
    assert sub.get_message(timeout=2)["type"] == "subscribe"

    items = make_items("r.events", EDGES, 25)
    answer = drv.request("produce", items=items, timeout=5)
    assert_all_ok(answer)
    assert_hub_free(answer)

    received = []
    t = time.monotonic()
    while len(received) < len(items) and time.monotonic() - t < 10:
        msg = sub.get_message(timeout=1)
        if msg and msg["type"] == "message":
            data = msg["data"].decode()  # PUBLISH has no headers: the body is the edge's bytes
            received.append((int(data[1:].split("-")[0]), data))
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "r.events", redis_server.stop, redis_server.start)
    assert back["recovered_after"] < 5
    assert drv.request("wait_healthy", broker="redis")["ok"]


def test_stream_mode_stores_fields_in_order_and_recovers(redis_server, driver):
    drv = driver()
    drv.request("build", mqm=config(redis_server.port, ["r.stream"], stream=True, stream_maxlen=10000))
    items = make_items("r.stream", EDGES, 25)
    answer = drv.request("produce", items=items, timeout=5)
    assert_all_ok(answer)

    r = redis.Redis(port=redis_server.port)
    entries = r.xrange("r.stream")
    assert len(entries) == len(items)
    received = []
    for _id, fields in entries:
        edge = int(fields[b"frontier-edge-id"])
        assert fields[b"frontier-topic"] == b"r.stream"
        assert fields[b"frontier-addr"] == f"10.1.{edge % 250}.9:{4000 + edge}".encode()
        received.append((edge, fields[b"data"].decode()))
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "r.stream", redis_server.stop, redis_server.start)
    assert drv.request("wait_healthy", broker="redis", value=True)["ok"]
    r = redis.Redis(port=redis_server.port)  # the restarted server is empty: only what came after
    datas = [f[b"data"].decode() for _id, f in r.xrange("r.stream")]
    assert back["item"]["data"] in datas


def test_health_follows_the_server(redis_server, driver):
    drv = driver()
    drv.request("build", mqm=config(redis_server.port, ["r.h"]))
    assert drv.request("wait_healthy", broker="redis", value=True)["ok"]
    redis_server.stop()
    assert drv.request("wait_healthy", broker="redis", value=False, timeout=10)["ok"]
    redis_server.start()
    assert drv.request("wait_healthy", broker="redis", value=True, timeout=10)["ok"]
