"""What an operator sees while an MQ broker is away: one log line per health change
(a broker unreachable at start included), rate-limited, no library tracebacks; an AMQP
sink aimed at a listener that never speaks AMQP stays unhealthy instead of flapping;
and a produce that times out reaches the edge as the broker's typed ``Timeout``,
counted as ``timeout`` (not ``cancelled``) in ``frontier_publishes_total``."""

from __future__ import annotations

import logging
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from frontier.sdk import Edge, Timeout
from tests.gateway import GatewayProcess, free_port

TOPIC = "alerts.fire"


def amqp_gateway(tmp_path: Path, port: int) -> GatewayProcess:
    return GatewayProcess(tmp_path, {"mqm": {"amqp": {
        "enable": True, "addrs": [f"guest:guest@127.0.0.1:{port}"], "producer": {"exchange": "", "routing_keys": [TOPIC]},
    }}}, control=True).start()


def publishes(gw: GatewayProcess) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://{gw.control_addr}/metrics", timeout=5).read().decode()
    pattern = r'^frontier_publishes_total\{direction="edge_to_mq",result="(\w+)"\} (\S+)$'
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.M)}


def health_lines(gw: GatewayProcess) -> list[str]:
    return [line for line in gw.log().splitlines() if "amqp sink:" in line]


def test_a_broker_down_from_the_start_is_logged_once_without_tracebacks(tmp_path):
    gw = amqp_gateway(tmp_path, free_port())  # nothing listens there
    try:
        deadline = time.monotonic() + 10
        while not health_lines(gw) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(4)  # the watcher keeps probing (every 0.25..2 s) meanwhile
        lines = health_lines(gw)
        assert len(lines) == 1 and "is unreachable: BrokerUnavailable: amqp: cannot connect" in lines[0], lines
        log = gw.log()
        assert "pika" not in log and "Traceback" not in log, log
    finally:
        gw.stop()


def test_a_listener_that_never_speaks_amqp_stays_unhealthy_and_times_out_typed(tmp_path, clients):
    with socket.socket() as silent:  # connects complete in the kernel; nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        gw = amqp_gateway(tmp_path, silent.getsockname()[1])
        try:
            edge = clients(Edge, gw.edge_addr, timeout=5.0)
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(Timeout) as info:
                    edge.publish(TOPIC, b"smoke", timeout=2.5)
                assert time.monotonic() - started < 2.5  # the broker's answer, before the edge's own deadline
                assert str(info.value).startswith("amqp: no ack from amqp://127.0.0.1:"), info.value
            time.sleep(4)  # more probes: with a produce stuck connecting, a probe proved "reachable" before
            counts = publishes(gw)
            assert counts.get("timeout") == 2 and not counts.get("cancelled"), counts
            lines = health_lines(gw)
            assert lines and not any("is reachable" in line for line in lines), lines
            assert len(lines) == 1, lines  # down from the start, and it stayed so
        finally:
            gw.stop()


def test_health_changes_are_logged_at_most_once_per_interval(caplog):
    from frontier.mqm.config import parse_mqm
    from frontier.mqm.redis_sink import RedisSink

    config = parse_mqm({"redis": {"enable": True, "addrs": [f"127.0.0.1:{free_port()}"],
                                  "producer": {"channels": ["t"]}}}, lambda message: None)
    sink = RedisSink(config.redis)
    sink.log_interval = 0.5
    with caplog.at_level(logging.INFO, logger="frontier.mqm"):
        sink._mark_down("refused")       # logged: unreachable (first state seen)
        for _ in range(20):              # flapping within the interval: held back
            sink._mark_up()
            sink._mark_down("refused again")
        sink._mark_up()
        held = [r.getMessage() for r in caplog.records]
        time.sleep(0.6)
        sink._report()                   # the watcher's next pass logs the state that held
        sink._report()
    sink.close()
    lines = [r.getMessage() for r in caplog.records]
    assert held == [f"redis sink: {sink.target} is unreachable: refused"], held
    assert lines == held + [f"redis sink: {sink.target} is reachable"], lines
