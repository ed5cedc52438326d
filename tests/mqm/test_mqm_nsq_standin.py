"""NSQ sink against the nsqd STAND-IN (nsqd_standin.py): no nsqd is installable here.

The stand-in speaks nsqd's TCP protocol; the read-back uses nsq-py's ``Reader``, a
real NSQ consumer library, so both directions go through the real wire format.
"""

from __future__ import annotations

import time

from nsq.reader import Reader
from nsq.response import Message

from mqm_helpers import SLACK, assert_all_ok, assert_hub_free, assert_in_order_per_edge, down_then_back, make_items

EDGES = [41, 42, 43]


def config(port: int) -> dict:
    return {"nsq": {"enable": True, "addrs": [f"127.0.0.1:{port}"], "producer": {"topics": ["q.events"]}, "pool_size": 4}}


def read_back(port: int, topic: str, want: int, timeout: float = 10.0) -> list[bytes]:
    reader = Reader(topic.encode(), b"test", nsqd_tcp_addresses=[f"127.0.0.1:{port}"], max_in_flight=100)
    bodies = []
    t = time.monotonic()
    try:
        while len(bodies) < want and time.monotonic() - t < timeout:
            for msg in reader.read():
                if isinstance(msg, Message):
                    bodies.append(msg.body)
                    msg.fin()
    finally:
        for conn in reader.connections():
            conn.close()
    return bodies


def test_pub_gets_ok_and_a_reader_gets_every_message_in_order_then_survives_a_restart(nsqd, driver):
    drv = driver()
    built = drv.request("build", mqm=config(nsqd.port))
    assert built["sinks"] == [{"broker": "nsq", "topics": ["q.events"]}]
    assert drv.request("wait_healthy", broker="nsq")["ok"]

    items = make_items("q.events", EDGES, 30)
    answer = drv.request("produce", items=items, timeout=5)
    assert_all_ok(answer)
    assert_hub_free(answer)
    # NSQ has no headers: the body is the edge's bytes, unchanged
    received = [(int(b.decode()[1:].split("-")[0]), b.decode()) for b in read_back(nsqd.port, "q.events", len(items))]
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "q.events", nsqd.stop, nsqd.start)
    assert back["item"]["data"].encode() in read_back(nsqd.port, "q.events", 1)


def test_an_error_frame_is_a_typed_error_and_the_connection_is_replaced(nsqd, driver):
    drv = driver()
    drv.request("build", mqm=config(nsqd.port))
    empty = {"topic": "q.events", "edge_id": 1, "data": ""}  # nsqd refuses an empty body
    result = drv.request("produce", items=[empty], timeout=5)["results"][0]
    assert not result["ok"] and result["error_class"] == "MessageRefused" and "E_BAD_MESSAGE" in result["message"], result
    assert_all_ok(drv.request("produce", items=make_items("q.events", [1], 3), timeout=5))


def test_a_message_over_max_msg_size_is_refused_before_sending(nsqd, driver):
    drv = driver()
    drv.request("build", mqm=config(nsqd.port))
    assert_all_ok(drv.request("produce", items=make_items("q.events", [1], 1), timeout=5))
    too_big = {"topic": "q.events", "edge_id": 1, "size": 2 * 1024 * 1024}
    result = drv.request("produce", items=[too_big], timeout=5)["results"][0]
    assert not result["ok"] and result["error_class"] == "MessageRefused" and "max_msg_size" in result["message"], result
    assert_all_ok(drv.request("produce", items=make_items("q.events", [1], 3), timeout=5))


def test_a_stalled_nsqd_times_out_within_the_deadline(nsqd, driver):
    drv = driver()
    drv.request("build", mqm=config(nsqd.port))
    assert_all_ok(drv.request("produce", items=make_items("q.events", [1], 1), timeout=5))
    nsqd.pause()
    try:
        answer = drv.request("produce", items=make_items("q.events", [1, 2, 3, 4, 5, 6], 1), timeout=1.0, mode="parallel")
    finally:
        nsqd.resume()
    for r in answer["results"]:
        assert not r["ok"] and r["error"] == "Timeout" and r["elapsed"] <= 1.0 + SLACK, r
    assert_hub_free(answer)
