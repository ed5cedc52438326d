"""AMQP sink against the shared RabbitMQ, reached through a proxy the test can cut."""

from __future__ import annotations

import time
import uuid

import pika
import pytest

from conftest import RABBIT
from mqm_helpers import SLACK, assert_all_ok, assert_hub_free, assert_in_order_per_edge, down_then_back, make_items

EDGES = [21, 22, 23, 24]


@pytest.fixture
def names():
    """A private exchange and queue on the shared broker, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"mqm-test-x-{tag}", f"mqm-test-q-{tag}"
    yield exchange, queue
    conn = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
    ch = conn.channel()
    ch.queue_delete(queue)
    ch.exchange_delete(exchange)
    conn.close()


def config(port: int, exchange: str, queue: str, **producer) -> dict:
    return {
        "amqp": {
            "enable": True,
            "addrs": [f"guest:guest@127.0.0.1:{port}"],
            "exchanges": [{"name": exchange, "kind": "topic"}],
            "queues": [{"name": queue}],
            "queueBindings": [{"queue_name": queue, "exchange_name": exchange, "binding_key": "a.#"}],
            "producer": {
                "exchange": exchange,
                "routing_keys": ["a.events", "z.unbound"],
                "delivery_mode": 2,
                "content_type": "application/octet-stream",
                "app_id": "frontier-test",
                "headers": {"x-origin": "gateway-1"},
                **producer,
            },
            "pool_size": 4,
        }
    }


def drain(queue: str, want: int, timeout: float = 10.0) -> list:
    """basic_get everything from ``queue`` (directly, not through the proxy)."""
    conn = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
    ch = conn.channel()
    got = []
    t = time.monotonic()
    while len(got) < want and time.monotonic() - t < timeout:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((method, props, body))
    conn.close()
    return got


def test_publish_with_confirms_declared_topology_and_headers_then_survive_a_cut(rabbit_proxy, names, driver):
    exchange, queue = names
    drv = driver()
    built = drv.request("build", mqm=config(rabbit_proxy.port, exchange, queue))
    assert built["sinks"] == [{"broker": "amqp", "topics": ["a.events", "z.unbound"]}]
    assert drv.request("wait_healthy", broker="amqp")["ok"]

    items = make_items("a.events", EDGES, 25)
    answer = drv.request("produce", items=items, timeout=5)
    assert_all_ok(answer)
    assert_hub_free(answer)

    received = []
    for method, props, body in drain(queue, len(items)):
        edge = int(props.headers["frontier-edge-id"])
        assert method.routing_key == "a.events" and method.exchange == exchange
        assert props.headers["frontier-topic"] == "a.events"
        assert props.headers["frontier-addr"] == f"10.1.{edge % 250}.9:{4000 + edge}"
        assert props.headers["x-origin"] == "gateway-1"
        assert props.delivery_mode == 2 and props.content_type == "application/octet-stream"
        assert props.app_id == "frontier-test" and props.message_id and props.timestamp
        received.append((edge, body.decode()))
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "a.events", rabbit_proxy.stop, rabbit_proxy.start)
    assert back["item"]["data"] in [body.decode() for _m, _p, body in drain(queue, 1)]


def test_unroutable_with_mandatory_is_an_error_and_the_sink_carries_on(rabbit_proxy, names, driver):
    exchange, queue = names
    drv = driver()
    drv.request("build", mqm=config(rabbit_proxy.port, exchange, queue, mandatory=True))
    answer = drv.request("produce", items=[{"topic": "z.unbound", "edge_id": 1, "data": "lost"}], timeout=5)
    result = answer["results"][0]
    assert not result["ok"] and result["error"] == "BrokerUnavailable" and result["error_class"] == "MessageRefused" and "no queue bound" in result["message"]
    assert drv.request("healthy")["healthy"] == {"amqp": True}  # the broker is fine, the message was not
    assert_all_ok(drv.request("produce", items=make_items("a.events", [1], 3), timeout=5))
    assert len(drain(queue, 3)) == 3


def test_a_stalled_broker_times_out_within_the_deadline_then_recovers(rabbit_proxy, names, driver):
    exchange, queue = names
    drv = driver()
    drv.request("build", mqm=config(rabbit_proxy.port, exchange, queue))
    assert_all_ok(drv.request("produce", items=make_items("a.events", [1], 2), timeout=5))
    rabbit_proxy.pause()  # connections stay open, nothing answers
    try:
        answer = drv.request("produce", items=make_items("a.events", [1, 2, 3, 4, 5, 6], 1), timeout=1.0, mode="parallel")
    finally:
        rabbit_proxy.resume()
    for r in answer["results"]:
        assert not r["ok"] and r["error"] == "Timeout" and r["elapsed"] <= 1.0 + SLACK, r
    assert_hub_free(answer)
    t = time.monotonic()
    while True:
        answer = drv.request("produce", items=make_items("a.events", [1], 1), timeout=2)
        if answer["results"][0]["ok"]:
            break
        assert time.monotonic() - t < 10, answer
    drain(queue, 10, timeout=1)


def test_concurrent_publishes_share_the_pool(rabbit_proxy, names, driver):
    exchange, queue = names
    drv = driver()
    drv.request("build", mqm=config(rabbit_proxy.port, exchange, queue))
    items = make_items("a.events", list(range(50)), 4)
    answer = drv.request("produce", items=items, timeout=10, mode="parallel")
    assert_all_ok(answer)
    assert_hub_free(answer)
    assert len(drain(queue, len(items))) == len(items)
