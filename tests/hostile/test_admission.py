"""What a connection can claim at admission: someone else's edge id, and unbounded
registrations."""

from __future__ import annotations

import threading
import time

import pytest

from frontier.sdk import Edge, LimitExceeded, Refused, Service
from frontier.wire import PROTOCOL_VERSION, ROLE_SERVICE
from frontier.wire.errors import ErrorCode
from frontier.wire.events import Hello, Ping, Pong, Refuse, Register, Response

from .conftest import Crowd, RawClient, assert_bystanders_fine, assert_no_traceback

HOLDER_ID = 777001


def test_a_refused_newcomer_with_a_held_id_leaves_the_holder_untouched(gateway_factory) -> None:
    """While a service's edge_online hook deliberates (1.5 s) over a newcomer that
    claims the holder's id, calls to the holder keep succeeding; the hook refuses the
    newcomer, and no trace of it remains (no offline hook for the id, holder online)."""
    gw = gateway_factory()
    offline: list[int] = []
    svc = Service(gw.service_addr, name="gatekeeper", timeout=10)

    def online(edge_id: int, meta: bytes, addr: str) -> None:
        if meta == b"impostor":
            time.sleep(1.5)
            raise PermissionError("not the real device")

    svc.register_edge_online(online)
    svc.register_edge_offline(lambda edge_id, meta, addr: offline.append(edge_id))
    holder = Edge(gw.edge_addr, edge_id=HOLDER_ID, meta=b"real", timeout=10)
    holder.register("whoami", lambda req: b"real")
    refused: list[BaseException] = []

    def impostor() -> None:
        try:
            Edge(gw.edge_addr, edge_id=HOLDER_ID, meta=b"impostor", timeout=10, reconnect=False)
        except Refused as exc:
            refused.append(exc)

    thread = threading.Thread(target=impostor)
    thread.start()
    answers = []
    while thread.is_alive():
        answers.append(svc.call(HOLDER_ID, "whoami", b"", timeout=2))
        time.sleep(0.05)
    thread.join()
    assert len(answers) >= 10 and set(answers) == {b"real"}, answers
    assert len(refused) == 1
    assert svc.call(HOLDER_ID, "whoami", b"") == b"real"
    time.sleep(0.3)
    assert offline == []
    holder.close()
    svc.close()
    assert_no_traceback(gw)


def test_an_accepted_newcomer_replaces_the_holder_only_after_its_hooks(gateway_factory) -> None:
    gw = gateway_factory()
    svc = Service(gw.service_addr, name="gatekeeper", timeout=10)
    svc.register_edge_online(lambda edge_id, meta, addr: time.sleep(0.5) if meta == b"new" else None)
    old = Edge(gw.edge_addr, edge_id=HOLDER_ID, meta=b"old", timeout=10, reconnect=False)
    old.register("whoami", lambda req: b"old")
    new_box: list[Edge] = []
    thread = threading.Thread(target=lambda: new_box.append(
        Edge(gw.edge_addr, edge_id=HOLDER_ID, meta=b"new", timeout=10, reconnect=False)))
    thread.start()
    time.sleep(0.2)
    assert svc.call(HOLDER_ID, "whoami", b"") == b"old"  # hooks still running: the holder serves
    thread.join()
    new_box[0].register("whoami", lambda req: b"new")
    deadline = time.monotonic() + 5
    while svc.call(HOLDER_ID, "whoami", b"") != b"new":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    new_box[0].close()
    svc.close()
    assert_no_traceback(gw)


def test_registrations_are_bounded_and_refused_with_a_typed_error(gateway_factory) -> None:
    gw = gateway_factory({"limits": {"max_registrations": 100, "max_name_length": 32}})
    edge = RawClient.edge(gw)
    edge.send(Register(1, rpcs=tuple(f"m{i}" for i in range(90))))
    assert edge.wait_for(Response).code == 0
    edge.send(Register(2, rpcs=tuple(f"n{i}" for i in range(20))))
    answer = edge.wait_for(Response)
    assert answer.code == ErrorCode.LIMIT_EXCEEDED and "max_registrations" in answer.message
    edge.send(Register(3, rpcs=("x" * 33,)))
    answer = edge.wait_for(Response)
    assert answer.code == ErrorCode.LIMIT_EXCEEDED and "max_name_length" in answer.message
    edge.send(Register(4, rpcs=tuple(f"m{i}" for i in range(90))))  # the same names again still fit
    assert edge.wait_for(Response).code == 0
    edge.send(Ping(5))
    assert edge.wait_for(Pong).nonce == 5
    # too many in the handshake itself: refused before admission
    late = RawClient(gw.service_addr, Hello(PROTOCOL_VERSION, ROLE_SERVICE, "greedy", topics=tuple(f"t{i}" for i in range(101))),
                     expect_welcome=False)
    refusal = late.next_event()
    assert type(refusal) is Refuse and refusal.code == ErrorCode.LIMIT_EXCEEDED
    # the SDK raises the typed error
    sdk_edge = Edge(gw.edge_addr, timeout=5)
    with pytest.raises(LimitExceeded):
        sdk_edge.register("y" * 40, lambda req: b"")
    sdk_edge.close()
    assert_no_traceback(gw)


def test_a_registration_flood_is_capped_and_bystanders_do_not_notice(gateway_factory) -> None:
    """One edge tries to register a million names (before: accepted, +164 MB, everyone
    stalled ~3 s); it stops at the default cap of 4096."""
    gw = gateway_factory()
    edge = RawClient.edge(gw)
    crowd = Crowd(gw, seconds=4.0)
    refused = 0
    for batch in range(100):  # 100 x 10,000 names
        names = tuple(f"f{batch}-{i}" for i in range(10_000))
        edge.send(Register(batch + 1, rpcs=names))
        answer = edge.wait_for(Response, 10)
        refused += answer.code == ErrorCode.LIMIT_EXCEEDED
    assert refused == 100  # even the first batch is over the cap
    assert_bystanders_fine(crowd.result(), "registration flood")
    assert_no_traceback(gw)
