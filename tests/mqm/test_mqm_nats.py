"""NATS sinks (core and JetStream) against a private nats-server with JetStream."""

from __future__ import annotations

import asyncio
import threading
import time

import nats

from mqm_helpers import SLACK, assert_all_ok, assert_hub_free, assert_in_order_per_edge, down_then_back, make_items

EDGES = [31, 32, 33]


def config(port: int) -> dict:
    return {
        "nats": {
            "enable": True,
            "addrs": [f"127.0.0.1:{port}"],
            "producer": {"subjects": ["n.events", "j.events"]},
            "jetstream": {"enable": True, "name": "MQMTEST", "producer": {"subjects": ["j.events", "j.other"]}},
        }
    }


class Subscriber:
    """A core NATS subscriber on its own thread and loop, collecting messages."""

    def __init__(self, port: int, subject: str) -> None:
        self.messages: list = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main() -> None:
            self.nc = await nats.connect(f"nats://127.0.0.1:{port}", reconnect_time_wait=0.2, max_reconnect_attempts=-1)

            async def cb(msg) -> None:
                self.messages.append(msg)

            await self.nc.subscribe(subject, cb=cb)
            await self.nc.flush()
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(main(), self.loop)
        assert ready.wait(5), "subscriber did not connect"

    def wait_for(self, n: int, timeout: float = 10.0) -> list:
        t = time.monotonic()
        while len(self.messages) < n and time.monotonic() - t < timeout:
            time.sleep(0.02)
        return list(self.messages)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def read_stream(port: int, stream: str) -> list:
    async def main() -> list:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        js = nc.jetstream()
        info = await js.stream_info(stream)
        msgs = [await js.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
        await nc.close()
        return msgs

    return asyncio.run(main())


def test_jetstream_takes_its_subjects_and_core_keeps_the_rest(nats_server, driver):
    drv = driver()
    built = drv.request("build", mqm=config(nats_server.port))
    assert built["sinks"] == [
        {"broker": "jetstream", "topics": ["j.events", "j.other"]},
        {"broker": "nats", "topics": ["n.events"]},
    ]


def test_core_publish_reaches_a_subscriber_with_headers_then_survives_a_restart(nats_server, driver):
    drv = driver()
    drv.request("build", mqm=config(nats_server.port))
    assert drv.request("wait_healthy", broker="nats")["ok"]
    sub = Subscriber(nats_server.port, "n.events")
    try:
        items = make_items("n.events", EDGES, 30)
        answer = drv.request("produce", items=items, timeout=5)
        assert_all_ok(answer)
        assert_hub_free(answer)
        received = []
        for msg in sub.wait_for(len(items)):
            edge = int(msg.headers["frontier-edge-id"])
            assert msg.headers["frontier-topic"] == "n.events"
            assert msg.headers["frontier-addr"] == f"10.1.{edge % 250}.9:{4000 + edge}"
            received.append((edge, msg.data.decode()))
        assert_in_order_per_edge(received, items)

        back = down_then_back(drv, "n.events", nats_server.stop, nats_server.start)
        assert back["item"]["data"] in [m.data.decode() for m in sub.wait_for(len(items) + 1)]
    finally:
        sub.close()


def test_jetstream_creates_the_stream_waits_for_puback_and_survives_a_restart(nats_server, driver):
    drv = driver()
    drv.request("build", mqm=config(nats_server.port))
    assert drv.request("wait_healthy", broker="jetstream")["ok"]
    items = make_items("j.events", EDGES, 30)
    answer = drv.request("produce", items=items, timeout=5)
    assert_all_ok(answer)
    assert_hub_free(answer)

    msgs = read_stream(nats_server.port, "MQMTEST")
    received = []
    for msg in msgs:
        edge = int(msg.headers["frontier-edge-id"])
        assert msg.subject == "j.events" and msg.headers["frontier-topic"] == "j.events"
        assert msg.headers["frontier-addr"] == f"10.1.{edge % 250}.9:{4000 + edge}"
        received.append((edge, msg.data.decode()))
    assert_in_order_per_edge(received, items)

    back = down_then_back(drv, "j.events", nats_server.stop, nats_server.start)
    assert back["item"]["data"] in [m.data.decode() for m in read_stream(nats_server.port, "MQMTEST")]


def test_jetstream_recreates_a_deleted_stream(nats_server, driver):
    drv = driver()
    drv.request("build", mqm=config(nats_server.port))
    assert_all_ok(drv.request("produce", items=make_items("j.other", [1], 2), timeout=5))

    async def delete() -> None:
        nc = await nats.connect(f"nats://127.0.0.1:{nats_server.port}")
        await nc.jetstream().delete_stream("MQMTEST")
        await nc.close()

    asyncio.run(delete())
    first = drv.request("produce", items=make_items("j.other", [1], 1), timeout=2)["results"][0]
    assert first["ok"] or first["error"] == "BrokerUnavailable", first  # no stream answers, then it is re-created
    assert_all_ok(drv.request("produce", items=make_items("j.other", [1], 1), timeout=2))
    assert len(read_stream(nats_server.port, "MQMTEST")) >= 1


def test_a_stalled_server_times_out_within_the_deadline(nats_server, driver):
    drv = driver()
    drv.request("build", mqm=config(nats_server.port))
    assert_all_ok(drv.request("produce", items=make_items("n.events", [1], 1) + make_items("j.events", [1], 1), timeout=5))
    nats_server.pause()
    try:
        items = make_items("n.events", [1, 2, 3], 1) + make_items("j.events", [1, 2, 3], 1)
        answer = drv.request("produce", items=items, timeout=1.0, mode="parallel")
    finally:
        nats_server.resume()
    for r in answer["results"]:
        assert not r["ok"] and r["error"] == "Timeout" and r["elapsed"] <= 1.0 + SLACK, r
    assert_hub_free(answer)
