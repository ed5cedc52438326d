"""One connection floods the gateway with cheap frames; everyone else must not notice.

Before the reader took turns, a 5 s flood of Pings stalled every other client for
6-7 s, and with short heartbeats the gateway closed all of them for "no heartbeat".
Here the heartbeat is 1 s (a bystander silent for 3 s would be cut) and each flood
lasts 5 s while 200 bystander edges call every 100 ms.
"""

from __future__ import annotations

import time

import pytest
import requests

from frontier.wire.codec import encode_frame
from frontier.wire.errors import ErrorCode
from frontier.wire.events import Cancel, GoAway, Ping, Pong, Publish, Register, Request

from .conftest import Crowd, RawClient, assert_bystanders_fine, assert_no_traceback

FLOODS = {
    "ping": Ping(7),
    "pong": Pong(7),
    "request": Request(5, "nobody-has-this", b"x" * 16, 1000),
    "publish": Publish(5, "nobody-claims-this", b"x" * 16, 1000),
    "register": Register(9, rpcs=("flood-method",)),
    "cancel": Cancel(12345),
}

#: the defaults, but heartbeats of 1 s: a bystander silent for 3 s would be cut
CONFIG = {"limits": {"heartbeat_interval": 1.0}}


def rate_limited(gw, action: str) -> float:
    """``frontier_rate_limited_total`` of edges for ``action``, from the gateway's /metrics."""
    text = requests.get(f"http://{gw.control_addr}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("frontier_rate_limited_total{") and f'action="{action}"' in line and 'role="edge"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_a_flood_of_one_frame_type_costs_only_the_flooder(gateway_factory, kind: str) -> None:
    gw = gateway_factory(CONFIG)
    attacker = RawClient.edge(gw, meta=b"flooder")
    crowd = Crowd(gw, seconds=6.0)
    written, ended = attacker.flood(encode_frame(FLOODS[kind]), seconds=5.0)
    result = crowd.result()
    assert_bystanders_fine(result, f"{kind} flood, {written / 1e6:.1f} MB written, attacker: {ended}")
    assert_no_traceback(gw)


def test_without_rate_limits_a_flood_still_shares_the_loop_round_robin(gateway_factory) -> None:
    """Rate limits off: the flooder takes every turn the reader gives it, and the
    bystanders theirs (the flooding gateway process is CPU-bound here)."""
    gw = gateway_factory({"limits": {"heartbeat_interval": 1.0, "edge_frames_per_second": 0, "edge_bytes_per_second": 0}})
    attacker = RawClient.edge(gw, meta=b"flooder")
    crowd = Crowd(gw, seconds=6.0)
    written, ended = attacker.flood(encode_frame(Ping(7)), seconds=5.0)
    assert_bystanders_fine(crowd.result(), f"unlimited ping flood, {written / 1e6:.1f} MB written, attacker: {ended}")
    assert_no_traceback(gw)


def test_a_flood_over_the_rate_is_throttled_not_cut_within_the_grace(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"heartbeat_interval": 1.0, "edge_frames_per_second": 5000}}, control=True)
    attacker = RawClient.edge(gw, meta=b"flooder")
    crowd = Crowd(gw, seconds=6.0)
    written, ended = attacker.flood(encode_frame(Ping(7)), seconds=5.0)
    assert_bystanders_fine(crowd.result(), f"ping flood over a 5,000 frames/s rate, {written / 1e6:.1f} MB written")
    assert ended == "time"  # slowed, not cut: the grace is 10 s
    assert rate_limited(gw, "throttled") > 0 and rate_limited(gw, "closed") == 0
    assert_no_traceback(gw)


def test_a_throttled_flooder_loses_nothing_and_a_short_burst_is_not_punished(gateway_factory) -> None:
    """Over the frame rate for less than the grace period: every frame is answered."""
    gw = gateway_factory({"limits": {"edge_frames_per_second": 2000, "rate_limit_grace": 5.0}})
    client = RawClient.edge(gw)
    burst = 6000  # three seconds' worth at the rate: throttled for about 2 s
    started = time.monotonic()
    client.sock.sendall(b"".join(encode_frame(Ping(i)) for i in range(burst)))
    nonces = [client.wait_for(Pong, 10.0).nonce for _ in range(burst)]
    took = time.monotonic() - started
    assert nonces == list(range(burst))
    assert 1.0 < took < 5.0, took  # slowed to the rate, not cut off
    client.send(Ping(99999))
    assert client.wait_for(Pong).nonce == 99999
    assert_no_traceback(gw)


def test_a_sustained_flood_is_closed_with_rate_limited(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"edge_frames_per_second": 1000, "rate_limit_grace": 1.0}})
    client = RawClient.edge(gw)
    client.flood(encode_frame(Ping(1)), seconds=2.5)
    deadline = time.monotonic() + 10
    while True:  # skip the Pongs it was sent before the close
        event = client.next_event(max(0.1, deadline - time.monotonic()))
        if type(event) is not Pong:
            break
    assert type(event) is GoAway and event.code == ErrorCode.RATE_LIMITED, event
    assert "over the connection's frame or byte rate" in gw.log()
    assert_no_traceback(gw)
