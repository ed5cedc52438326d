"""Peers that stop reading: what they cost is bounded by ``max_outgoing_bytes``, and
the cut-off costs only them.

Before, the outgoing cap counted payload bytes while each small queued frame cost
several times its size: with the cap at 8 MiB a client that pinged and never read
grew the gateway by ~50 MiB before it was cut.
"""

from __future__ import annotations

import threading
import time

from frontier.wire.codec import encode_frame
from frontier.wire.errors import ErrorCode
from frontier.wire.events import Request, Response

from .conftest import Crowd, RawClient, assert_bystanders_fine, assert_no_traceback, gateway_rss

CAP = 8 * 1048576


def test_a_peer_that_never_reads_its_small_answers_costs_at_most_one_and_a_half_caps(gateway_factory) -> None:
    """Tiny calls to a method nobody serves, each answered with a small error frame
    (about three times its size) that the caller never reads."""
    gw = gateway_factory({"limits": {"max_outgoing_bytes": CAP, "edge_frames_per_second": 0}})
    attacker = RawClient.edge(gw, rcvbuf=65536)  # the kernel holds little of what it does not read
    time.sleep(0.5)
    before = peak = gateway_rss(gw)
    done = threading.Event()
    outcome: list[str] = []

    def flood() -> None:
        outcome.append(attacker.flood(encode_frame(Request(1, "m", b"", 0)), seconds=20.0)[1])
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    while not done.wait(0.02):
        peak = max(peak, gateway_rss(gw))
    grew = peak - before
    print(f"\nRSS before {before / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB: grew {grew / 2**20:.1f} MiB "
          f"for a cap of {CAP / 2**20:.0f} MiB; attacker: {outcome}")
    assert outcome != ["time"], "the peer that never reads was never cut off"
    assert "slow consumer" in gw.log()
    assert grew <= 1.5 * CAP
    assert_no_traceback(gw)


def test_a_service_that_stops_reading_is_cut_and_only_its_callers_see_it(gateway_factory) -> None:
    """An edge piles calls onto a service that never reads; it is cut as a slow
    consumer, the caller gets ServiceNotOnline for each call, and the bystanders
    (another service, 200 edges) see nothing."""
    gw = gateway_factory({"limits": {"max_outgoing_bytes": 2 * 1048576}})
    stuck = RawClient.service(gw, "stuck", rpcs=("stuck",), rcvbuf=65536)  # never reads again
    caller = RawClient.edge(gw)
    crowd = Crowd(gw, seconds=5.0)
    calls = 500
    for i in range(calls):
        caller.send(Request(i + 1, "stuck", b"z" * 60000, 10_000))
    codes = {caller.wait_for(Response, 10).code for _ in range(calls)}
    result = crowd.result()
    assert_bystanders_fine(result, "a service that stops reading")
    # in flight when it was cut: ServiceNotOnline; sent after: nobody serves "stuck" any more
    assert codes == {ErrorCode.SERVICE_NOT_ONLINE, ErrorCode.RPC_NOT_ONLINE}, codes
    assert "slow consumer" in gw.log()
    stuck.close()
    assert_no_traceback(gw)


def test_an_edge_that_stops_reading_is_cut_and_the_service_gets_typed_errors(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"max_outgoing_bytes": 1048576}})
    stuck = RawClient.edge(gw, rcvbuf=65536, rpcs=("dump",))  # never reads again
    svc = RawClient.service(gw, "pusher")
    calls = 400  # 12.8 MB: more than the kernel's buffers (up to ~4 MB) and the cap together
    for i in range(calls):
        svc.send(Request(i + 1, "dump", b"q" * 32000, 10_000, stuck.welcome.id))
    codes = {svc.wait_for(Response, 15).code for _ in range(calls)}
    assert codes == {ErrorCode.EDGE_NOT_ONLINE}, codes
    assert "slow consumer" in gw.log()
    assert_no_traceback(gw)
