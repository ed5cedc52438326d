"""Every dataplane route in both directions, with real sockets and a real gateway."""

from __future__ import annotations

import threading
import time

import pytest

from frontier.sdk import (
    BufferFull, ConnectionClosed, EdgeNotOnline, FrontierError, InvalidArgument, Message, RemoteError,
    RpcNotOnline, ServiceNotOnline, Timeout, TopicNotOnline,
)
from tests.streams import open_accepted


def in_thread(fn, *args):
    """Run ``fn`` in a thread; return a dict that gets 'result' or 'error'."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # the test inspects it
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    box["thread"] = t
    return box


# -- RPC -----------------------------------------------------------------------------------


def test_edge_calls_service_and_sees_its_edge_id(service, edge):
    svc = service(name="rpc-a")
    svc.register("whoami", lambda req: b"%s:%d:%s" % (req.method.encode(), req.edge_id, req.data))
    e = edge(meta=b"dev")
    assert e.call("whoami", b"x") == b"whoami:%d:x" % e.edge_id


def test_service_calls_edge(service, edge):
    svc = service()
    e = edge()
    e.register("reverse", lambda req: req.data[::-1])
    got = svc.call(e.edge_id, "reverse", b"abc")
    assert got == b"cba"


def test_handler_returning_none_gives_empty_bytes(service, edge):
    svc = service()
    svc.register("nothing", lambda req: None)
    assert edge().call("nothing", b"") == b""


def test_handler_exception_reaches_caller_as_remote_error(service, edge):
    svc = service()

    def fail(req):
        raise ValueError("no such widget")

    svc.register("fail", fail)
    e = edge()
    with pytest.raises(RemoteError, match="no such widget"):
        e.call("fail", b"")
    # the connection survived the handler's exception
    svc.register("ok", lambda req: b"ok")
    assert e.call("ok", b"") == b"ok"


def test_edge_handler_exception_reaches_service(service, edge):
    svc = service()
    e = edge()

    def fail(req):
        raise KeyError("gone")

    e.register("fail", fail)
    with pytest.raises(RemoteError, match="gone"):
        svc.call(e.edge_id, "fail", b"")


def test_call_errors_are_typed(service, edge):
    svc = service()
    e = edge()
    with pytest.raises(RpcNotOnline):
        e.call("nobody-registered-this", b"")
    with pytest.raises(EdgeNotOnline):
        svc.call(987654321, "anything", b"")
    with pytest.raises(RpcNotOnline):
        svc.call(e.edge_id, "edge-has-no-such-method", b"")
    with pytest.raises(InvalidArgument):
        e.register("$reserved", lambda req: b"")


def test_call_deadline_raises_timeout_and_is_a_builtin_timeout(service, edge):
    svc = service()
    release = threading.Event()
    svc.register("sleepy", lambda req: release.wait(5) and b"late")
    e = edge()
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        e.call("sleepy", b"", timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 2.0
    release.set()


def test_concurrent_calls_from_many_threads(service, edge):
    svc = service()
    svc.register("echo", lambda req: req.data)
    e = edge()
    results: list[bytes] = []
    lock = threading.Lock()

    def worker(n):
        for i in range(20):
            out = e.call("echo", b"%d-%d" % (n, i))
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == sorted(b"%d-%d" % (n, i) for n in range(10) for i in range(20))


# -- messages ------------------------------------------------------------------------------------


def test_edge_publish_returns_after_done(service, edge):
    svc = service(topics=["telemetry"])
    e = edge()
    box = in_thread(e.publish, "telemetry", b"t=21")
    msg: Message = svc.receive(timeout=5)
    assert (msg.topic, msg.data, msg.edge_id) == ("telemetry", b"t=21", e.edge_id)
    time.sleep(0.2)
    assert box["thread"].is_alive(), "publish returned before done()"
    msg.done()
    box["thread"].join(5)
    assert "error" not in box


def test_edge_publish_raises_on_error_ack(service, edge):
    svc = service(topics=["orders"])
    e = edge()
    box = in_thread(e.publish, "orders", b"bad order")
    svc.receive(timeout=5).error("order rejected: out of stock")
    box["thread"].join(5)
    assert isinstance(box["error"], RemoteError)
    assert "out of stock" in str(box["error"])


def test_service_publish_to_edge(service, edge):
    svc = service()
    e = edge()
    box = in_thread(svc.publish, e.edge_id, b"config-v2", "config")
    msg = e.receive(timeout=5)
    assert (msg.topic, msg.data) == ("config", b"config-v2")
    msg.done()
    box["thread"].join(5)
    assert "error" not in box


def test_service_publish_error_ack(service, edge):
    svc = service()
    e = edge()
    box = in_thread(svc.publish, e.edge_id, b"x")
    e.receive(timeout=5).error("cannot apply")
    box["thread"].join(5)
    assert isinstance(box["error"], RemoteError)


def test_publish_errors_are_typed(service, edge):
    svc = service()
    e = edge()
    with pytest.raises(TopicNotOnline):
        e.publish("no-such-topic", b"")
    with pytest.raises(EdgeNotOnline):
        svc.publish(123456789, b"")


def test_publish_deadline(service, edge):
    service(topics=["slowtopic"])  # receives but never answers
    e = edge()
    with pytest.raises(Timeout):
        e.publish("slowtopic", b"", timeout=0.3)


def test_message_answered_twice_raises(service, edge):
    svc = service(topics=["twice"])
    e = edge()
    box = in_thread(e.publish, "twice", b"")
    msg = svc.receive(timeout=5)
    msg.done()
    with pytest.raises(FrontierError):
        msg.done()
    box["thread"].join(5)


def test_receive_timeout(service):
    with pytest.raises(Timeout):
        service().receive(timeout=0.1)


def test_receive_buffer_full(gateway, clients, edge):
    from frontier.sdk import Service

    svc = clients(Service, gateway.service_addr, topics=["flood"], receive_buffer=2)
    e = edge()
    waiting = [in_thread(e.publish, "flood", b"%d" % i) for i in range(2)]
    deadline = time.monotonic() + 5
    while svc._inbox.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(BufferFull):
        e.publish("flood", b"third")
    for _ in range(2):
        svc.receive(timeout=5).done()
    for box in waiting:
        box["thread"].join(5)
        assert "error" not in box


# -- service availability -----------------------------------------------------------------------


def test_stream_to_unknown_service(edge):
    with pytest.raises(ServiceNotOnline):
        edge().open_stream("no-such-service")


def test_stream_to_unknown_edge(service):
    with pytest.raises(EdgeNotOnline):
        service().open_stream(55555)


def test_closed_client_raises_connection_closed(service):
    svc = service()
    svc.close()
    with pytest.raises(ConnectionClosed):
        svc.call(1, "x", b"")
    with pytest.raises(ConnectionClosed):
        svc.receive(timeout=1)


def test_edge_ids_unique_and_wanted_id_honoured(edge):
    a, b = edge(), edge()
    assert a.edge_id != b.edge_id
    c = edge(edge_id=4242)
    assert c.edge_id == 4242


def test_edge_given_several_addresses_connects_to_the_first_that_answers(gateway, clients):
    from frontier.sdk import Edge
    from tests.gateway import free_port

    dead = f"127.0.0.1:{free_port()}"
    e = clients(Edge, [dead, gateway.edge_addr])
    assert e.connected and e.edge_id


def test_str_is_utf8_at_every_sdk_entry_point(gateway, clients):
    from frontier.sdk import Edge, Service

    svc = clients(Service, gateway.service_addr, name="texts", topics=["notes"])
    svc.register("echo", lambda req: req.data.decode() + " ✓")  # a handler may answer str too
    seen = {}
    svc.register_edge_online(lambda edge_id, meta, addr: seen.setdefault("meta", meta))
    e = clients(Edge, gateway.edge_addr, meta="sensor-7 ✓")
    assert e.meta == "sensor-7 ✓".encode() and seen["meta"] == "sensor-7 ✓".encode()
    assert e.call("echo", "grüße") == "grüße ✓".encode()
    got = {}

    def take():
        msg = svc.receive(timeout=5)
        got["data"] = msg.data
        msg.done()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    e.publish("notes", "t=21.5 °C")
    t.join(5)
    assert got["data"] == "t=21.5 °C".encode()
    e.register("hello", lambda req: b"hi " + req.data)
    assert svc.call(e.edge_id, "hello", "dévice") == "hi dévice".encode()
    st, acc = open_accepted(lambda: e.open_stream("texts"), svc.accept_stream)
    st.sendall("über")
    st.shutdown_write()
    assert acc.recv_exactly(5) == "über".encode()


@pytest.mark.parametrize("bad", [42, None, ["a"], {"k": 1}])
def test_data_of_another_type_is_a_type_error_naming_the_argument(gateway, clients, bad):
    from frontier.sdk import Edge, Service

    svc = clients(Service, gateway.service_addr, name="types")
    svc.register("echo", lambda req: req.data)
    e = clients(Edge, gateway.edge_addr)
    with pytest.raises(TypeError, match=r"^the data of call 'echo' must be bytes or str, not "):
        e.call("echo", bad)
    with pytest.raises(TypeError, match=r"^the data of publish to 'x' must be bytes or str"):
        e.publish("x", bad)
    with pytest.raises(TypeError, match=r"^Edge\(meta=...\) must be bytes or str"):
        Edge(gateway.edge_addr, meta=bad, timeout=5)
    svc.register("bad-answer", lambda req: 42)
    with pytest.raises(RemoteError, match="the answer of handler 'bad-answer' must be bytes or str, not int"):
        e.call("bad-answer", b"")
    st, acc = open_accepted(lambda: e.open_stream("types"), svc.accept_stream)
    with pytest.raises(TypeError, match=r"^Stream.sendall\(data\): data must be bytes or str"):
        st.sendall(bad)
    st.close()
    acc.close()
