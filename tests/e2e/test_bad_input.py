"""Hostile and broken clients over raw sockets: the gateway closes them, says why where
the protocol lets it, logs it, and keeps serving everyone else.

After every test a real SDK edge connects and calls a real service (``_still_serving``).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Iterator

import msgpack
import pytest

from frontier.sdk import Edge, InvalidArgument, ProtocolError, Refused, RemoteError, Service
from frontier.wire.codec import encode_frame
from frontier.wire.errors import ErrorCode
from frontier.wire.events import (
    PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE, Cancel, Event, GoAway, Hello, Ping, Pong, Refuse, Request,
    Response, Welcome,
)
from tests.gateway import GatewayProcess
from tests.e2e.proc_tools import RawClient, wait_until

HANDSHAKE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway that gives a handshake one second."""
    with GatewayProcess(tmp_path_factory.mktemp("bad"), {"limits": {"handshake_timeout": HANDSHAKE_TIMEOUT}}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def svc(gw: GatewayProcess) -> Iterator[Service]:
    """A service with ``echo`` and ``boom`` (always raises)."""
    service = Service(gw.service_addr, name="victim", timeout=5.0)

    def boom(req):
        raise RuntimeError("kaboom")

    service.register("echo", lambda req: req.data)
    service.register("boom", boom)
    service.register("wrong_type", lambda req: 42)  # neither bytes nor str
    yield service
    service.close()


@pytest.fixture(autouse=True)
def _still_serving(gw: GatewayProcess, svc: Service) -> Iterator[None]:
    """After each test: the gateway is alive and a real edge can still call a service."""
    yield
    assert gw.proc is not None and gw.proc.poll() is None, f"the gateway died:\n{gw.log()}"
    with Edge(gw.edge_addr, timeout=5.0, reconnect=False) as edge:
        assert edge.call("echo", b"still serving") == b"still serving"
    assert svc.connected


def _closing_frames(raw: RawClient, timeout: float = 3.0) -> list[Event]:
    """Frames until the gateway closes (raises ``socket.timeout`` if it does not)."""
    return raw.read_until_closed(timeout)


def _only_closing(events: list[Event], code: ErrorCode) -> None:
    """The gateway may end with one Refuse/GoAway, and it must carry ``code``."""
    for ev in events:
        assert isinstance(ev, (Refuse, GoAway)), f"unexpected frame {ev!r}"
        assert ev.code == code, ev


def _frame(obj: object) -> bytes:
    body = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


# -- garbage and framing -----------------------------------------------------------------------------


@pytest.mark.parametrize("junk", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a confused HTTP client: its header reads as a huge length
    struct.pack(">I", 8) + b"\xc1garbage",  # a frame whose body is not msgpack
    struct.pack(">I", 3) + b"\x93\x01\x02",  # msgpack, but not a frame
    struct.pack(">I", 2) + b"\x91\x63",  # a frame of unknown type 99
    _frame([Hello.TYPE, "1", ROLE_EDGE, "", [], [], [], b"", None, b""]),  # a Hello whose version is a str
    _frame([Hello.TYPE, PROTOCOL_VERSION, ROLE_EDGE]),  # a Hello missing fields
], ids=["http", "not-msgpack", "not-a-frame", "unknown-type", "wrong-field-type", "missing-fields"])
def test_garbage_closes_the_connection(gw, junk):
    with RawClient(gw.edge_addr) as raw:
        raw.send_raw(junk)
        events = _closing_frames(raw)
    codes = {ErrorCode.PROTOCOL_ERROR, ErrorCode.FRAME_TOO_LARGE}
    assert all(isinstance(ev, Refuse) and ev.code in codes for ev in events), events


def test_garbage_after_the_handshake_closes_the_connection(gw):
    with RawClient(gw.edge_addr) as raw:
        raw.hello_edge()
        raw.send_raw(struct.pack(">I", 4) + b"\xc1\xc1\xc1\xc1")
        _only_closing(_closing_frames(raw), ErrorCode.PROTOCOL_ERROR)


def test_peer_closing_mid_frame_is_harmless(gw):
    for cut in (2, 7):
        with RawClient(gw.edge_addr) as raw:
            raw.hello_edge()
            raw.send_raw(encode_frame(Ping(5))[:cut])
    with RawClient(gw.edge_addr) as raw:
        raw.send_raw(encode_frame(Hello(PROTOCOL_VERSION, ROLE_EDGE))[:5])


def test_a_one_gigabyte_header_is_refused_without_its_body(gw):
    with RawClient(gw.edge_addr) as raw:
        welcome = raw.hello_edge()
        raw.send_raw(struct.pack(">I", 1 << 30))  # and never a byte of the body
        events = _closing_frames(raw, timeout=5.0)
    assert events == [GoAway(ErrorCode.FRAME_TOO_LARGE, events[0].message if events else "")], (
        f"expected one GoAway(FRAME_TOO_LARGE) before the close, got {events!r}"
    )
    lines = wait_until(
        lambda: [line for line in gw.log().splitlines() if str(1 << 30) in line], 5, what="a log line about the frame"
    )
    assert len(lines) == 1, lines
    assert f"edge {welcome.id}" in lines[0] and "FRAME_TOO_LARGE" in lines[0], lines[0]


def test_a_large_header_before_the_handshake_is_refused(gw):
    with RawClient(gw.edge_addr) as raw:
        raw.send_raw(struct.pack(">I", 0xFFFFFFFF))
        events = _closing_frames(raw, timeout=5.0)
    assert [type(ev) for ev in events] == [Refuse] and events[0].code == ErrorCode.FRAME_TOO_LARGE, events


# -- valid frames at the wrong time -------------------------------------------------------------------


@pytest.mark.parametrize("frame", [
    Request(1, "echo", b"x", 1000),
    Welcome(1, 1 << 20, 15.0, 1 << 20, 1024),
    Ping(1),
    Refuse(ErrorCode.REFUSED, "no"),
], ids=lambda ev: type(ev).__name__)
def test_a_frame_before_hello_closes_the_connection(gw, frame):
    with RawClient(gw.edge_addr) as raw:
        raw.send(frame)
        _only_closing(_closing_frames(raw), ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("frame", [
    Welcome(1, 1 << 20, 15.0, 1 << 20, 1024),
    Hello(PROTOCOL_VERSION, ROLE_EDGE),
    GoAway(ErrorCode.GOING_AWAY, "a client cannot send this"),
], ids=lambda ev: type(ev).__name__)
def test_a_gateway_frame_from_a_client_closes_the_connection(gw, frame):
    with RawClient(gw.edge_addr) as raw:
        raw.hello_edge()
        raw.send(frame)
        _only_closing(_closing_frames(raw), ErrorCode.PROTOCOL_ERROR)


def test_answers_to_unknown_ids_are_ignored(gw):
    with RawClient(gw.edge_addr) as raw:
        raw.hello_edge()
        raw.send(Response(12345, 0, b"nobody asked"))
        raw.send(Cancel(777))
        raw.send(Ping(42))
        assert raw.read_event(3.0) == Pong(42)
        raw.send(Request(1, "echo", b"after", 2000))
        answer = raw.read_event(3.0)
        assert answer == Response(1, 0, b"after", "")


def test_reserved_hook_methods_cannot_be_called_by_an_edge(gw):
    with Edge(gw.edge_addr, timeout=5.0, reconnect=False) as edge:
        with pytest.raises(InvalidArgument):
            edge.call("$get_edge_id", b"")
        assert edge.call("echo", b"ok") == b"ok"


# -- handshakes that go wrong ------------------------------------------------------------------------------


def test_a_silent_connection_is_closed_after_the_handshake_timeout(gw):
    with RawClient(gw.edge_addr) as raw:
        opened = time.monotonic()
        events = _closing_frames(raw, timeout=HANDSHAKE_TIMEOUT + 3.0)
        waited = time.monotonic() - opened
    assert waited >= HANDSHAKE_TIMEOUT * 0.8, f"closed after {waited:.2f}s, before the handshake deadline"
    _only_closing(events, ErrorCode.TIMEOUT)


def test_a_peer_that_hangs_up_before_hello_is_not_logged_as_a_handshake_timeout(gw):
    # a TCP health probe connects and closes at once; the log must not blame a deadline
    with RawClient(gw.edge_addr) as raw:
        addr = "%s:%d" % raw.sock.getsockname()[:2]
    time.sleep(0.5)
    lines = [line for line in gw.log().splitlines() if addr in line]
    assert not any("no handshake within the deadline" in line for line in lines), lines


def test_a_wrong_protocol_version_is_refused_with_unsupported_version(gw):
    with RawClient(gw.edge_addr) as raw:
        raw.send(Hello(PROTOCOL_VERSION + 98, ROLE_EDGE))
        events = _closing_frames(raw)
    assert len(events) == 1 and isinstance(events[0], Refuse), f"expected one Refuse frame, got {events!r}"
    assert events[0].code == ErrorCode.UNSUPPORTED_VERSION


def test_an_unknown_role_is_refused(gw):
    with RawClient(gw.edge_addr) as raw:
        raw.send(Hello(PROTOCOL_VERSION, "toaster"))
        _only_closing(_closing_frames(raw), ErrorCode.PROTOCOL_ERROR)


def test_an_edge_on_the_service_port_is_refused(gw):
    with pytest.raises(Refused) as info:
        Edge(gw.service_addr, timeout=5.0, reconnect=False)
    assert "service" in str(info.value)
    with pytest.raises(Refused):
        Service(gw.edge_addr, timeout=5.0, reconnect=False)


def test_a_service_with_reserved_or_unknown_names_is_refused(gw):
    with RawClient(gw.service_addr) as raw:
        raw.send(Hello(PROTOCOL_VERSION, ROLE_SERVICE, "x", (), ("$sneaky",)))
        events = _closing_frames(raw)
    assert [(type(ev), ev.code) for ev in events] == [(Refuse, ErrorCode.INVALID_ARGUMENT)], events
    with RawClient(gw.service_addr) as raw:
        raw.send(Hello(PROTOCOL_VERSION, ROLE_SERVICE, "x", (), (), ("not_a_hook",)))
        events = _closing_frames(raw)
    assert [(type(ev), ev.code) for ev in events] == [(Refuse, ErrorCode.INVALID_ARGUMENT)], events


def test_many_half_open_connections_do_not_stop_the_gateway(gw):
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", gw.edge_port), timeout=5)
            s.sendall(b"\x00\x00")  # half a header, then nothing
            socks.append(s)
        with Edge(gw.edge_addr, timeout=5.0, reconnect=False) as edge:
            assert edge.call("echo", b"meanwhile") == b"meanwhile"
    finally:
        for s in socks:
            s.close()


# -- handlers that fail -----------------------------------------------------------------------------------


def test_a_raising_handler_never_kills_its_connection(gw, svc):
    service_id = svc.service_id
    with Edge(gw.edge_addr, timeout=5.0, reconnect=False) as edge:
        def edge_boom(req):
            raise KeyError("edge side")

        edge.register("boom", edge_boom)
        for _ in range(3):
            with pytest.raises(RemoteError) as info:
                edge.call("boom", b"")
            assert "kaboom" in str(info.value)
            with pytest.raises(RemoteError) as info:
                edge.call("wrong_type", b"")
            assert "bytes" in str(info.value)
            assert edge.call("echo", b"next") == b"next"
            with pytest.raises(RemoteError) as info:
                svc.call(edge.edge_id, "boom", b"")
            assert "edge side" in str(info.value)
        assert edge.connected
    assert svc.connected and svc.service_id == service_id, "the service's connection was replaced"


def test_a_frame_too_large_to_send_fails_locally_and_keeps_the_connection(gw, svc):
    with Edge(gw.edge_addr, timeout=5.0, reconnect=False) as edge:
        with pytest.raises(ProtocolError):
            edge.call("echo", b"x" * (2 << 20))
        assert edge.call("echo", b"small") == b"small"
