"""Kafka sink against tansu, a real Kafka-protocol broker started on a free port."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from mqm_helpers import assert_all_ok, assert_hub_free, assert_in_order_per_edge, down_then_back, make_items

EDGES = [7, 8, 9, 10, 11]


def config(port: int, topics: list[str], **producer) -> dict:
    return {"kafka": {"enable": True, "addrs": [f"127.0.0.1:{port}"], "producer": {"topics": topics, **producer}}}


def consume(port: int, topic: str, want: int, timeout: float = 20.0) -> list:
    """Read the whole topic from the beginning (assign + seek: tansu's end offsets lie)."""
    consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        t = time.monotonic()
        partitions = None
        while not partitions and time.monotonic() - t < timeout:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        assert partitions, f"topic {topic} never appeared"
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records = []
        while len(records) < want and time.monotonic() - t < timeout:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_produce_keyed_by_edge_with_headers_in_order_then_survive_restart(tansu, driver):
    drv = driver()
    built = drv.request("build", mqm=config(tansu.port, ["k.events", "k.other"], required_acks=-1))
    assert built["sinks"] == [{"broker": "kafka", "topics": ["k.events", "k.other"]}]
    assert drv.request("wait_healthy", broker="kafka")["ok"]

    items = make_items("k.events", EDGES, 30)
    answer = drv.request("produce", items=items, timeout=10)
    assert_all_ok(answer)
    assert_hub_free(answer)

    records = consume(tansu.port, "k.events", len(items))
    received = []
    partition_of_edge: dict[int, int] = {}
    for rec in records:
        headers = dict(rec.headers)
        edge = int(headers["frontier-edge-id"])
        assert rec.key == str(edge).encode()
        assert headers["frontier-topic"] == b"k.events"
        assert headers["frontier-addr"] == f"10.1.{edge % 250}.9:{4000 + edge}".encode()
        assert partition_of_edge.setdefault(edge, rec.partition) == rec.partition, "one edge, one partition"
        received.append((edge, rec.value.decode()))
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "k.events", tansu.proxy.stop, tansu.proxy.start, deadline=2.0)
    after = consume(tansu.port, "k.events", 1)
    assert back["item"]["data"] in [r.value.decode() for r in after]


def test_many_concurrent_produces_batch_and_do_not_serialize(tansu, driver):
    drv = driver()
    drv.request("build", mqm=config(tansu.port, ["k.load"]))
    assert drv.request("wait_healthy", broker="kafka")["ok"]
    items = make_items("k.load", list(range(100)), 5)
    answer = drv.request("produce", items=items, timeout=10, mode="parallel")
    assert_all_ok(answer)
    assert_hub_free(answer)
    # 500 acks=all produces at once complete in well under what 500 round trips in a row would take
    assert answer["elapsed"] < 5, answer["elapsed"]
    assert len(consume(tansu.port, "k.load", len(items))) == len(items)


def test_a_cluster_down_at_start_does_not_block_build_and_is_picked_up_later(tansu, driver):
    tansu.proxy.stop()
    drv = driver()
    built = drv.request("build", mqm=config(tansu.port, ["k.late"]))
    assert built["elapsed"] < 0.5
    answer = drv.request("produce", items=[{"topic": "k.late", "edge_id": 1, "data": "x"}], timeout=1.0)
    result = answer["results"][0]
    assert not result["ok"] and result["error"] == "BrokerUnavailable" and result["elapsed"] < 1.0, result
    tansu.proxy.start()
    assert drv.request("wait_healthy", broker="kafka", timeout=15)["ok"]
    assert_all_ok(drv.request("produce", items=[{"topic": "k.late", "edge_id": 1, "data": "y"}], timeout=5))


def test_an_oversized_message_is_refused_and_the_sink_stays_healthy(tansu, driver):
    drv = driver()
    drv.request("build", mqm=config(tansu.port, ["k.size"], max_message_bytes=2000))
    assert_all_ok(drv.request("produce", items=make_items("k.size", [1], 1), timeout=5))
    result = drv.request("produce", items=[{"topic": "k.size", "edge_id": 1, "size": 5000}], timeout=5)["results"][0]
    assert not result["ok"] and result["error"] == "BrokerUnavailable" and result["error_class"] == "MessageRefused", result
    assert drv.request("healthy")["healthy"] == {"kafka": True}
    assert_all_ok(drv.request("produce", items=make_items("k.size", [1], 1), timeout=5))
