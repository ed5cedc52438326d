"""A ClusterService over three real frontiers and a Frontlas: every primitive reaches
edges on every frontier, and edges on every frontier reach the service."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator

import pytest

from frontier.sdk import Edge, EdgeNotOnline, RemoteError
from frontier.sdk import ClusterEdge, ClusterService
from frontier.sdk.cluster import frontier_of_edge, list_frontiers
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import drop_prefix, new_prefix, wait_until

pytestmark = pytest.mark.timeout(120)

FIDS = ("fa", "fb", "fc")


class Trio:
    """Three frontiers, a Frontlas, two edges on each frontier and a ClusterService."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.fl = cluster.frontlas()
        from tests.cluster.helpers import start_all

        gws = [cluster.frontier(fid, start=False) for fid in FIDS]
        start_all(gws)
        cluster.wait_registered(*FIDS)
        self.svc = cluster.client(ClusterService, self.fl.rest_addr, name="hub", topics=["telemetry"], refresh_interval=1.0)
        self.svc.register("echo", lambda req: b"echo:" + req.data)
        self.svc.register("who", lambda req: str(req.edge_id).encode())

        def boom(req: Any) -> bytes:
            raise ValueError("bad request " + req.data.decode())

        self.svc.register("boom", boom)
        self.edges: dict[str, list[Edge]] = {}
        for fid, gw in cluster.frontiers.items():
            self.edges[fid] = [cluster.client(Edge, gw.edge_addr, meta=f"{fid}-{i}".encode()) for i in range(2)]
            for edge in self.edges[fid]:
                edge.register("ping", lambda req, e=edge: b"pong:%d:" % e.edge_id + req.data)
        self.all_edges = [e for es in self.edges.values() for e in es]
        ids = {e.edge_id for e in self.all_edges}
        wait_until(lambda: ids <= set(self.fl.edges()), 10, what="every edge reported")


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory, shared_redis: Any) -> Iterator[Trio]:
    prefix = new_prefix()
    cluster = Cluster(tmp_path_factory.mktemp("trio"), prefix)
    try:
        yield Trio(cluster)
    finally:
        cluster.close()
        drop_prefix(shared_redis, prefix)


def test_service_connects_to_every_frontier(trio: Trio) -> None:
    assert trio.svc.frontiers == sorted(FIDS)
    listed = {f.frontier_id: f for f in list_frontiers(trio.fl.rest_addr)}
    assert set(listed) == set(FIDS)
    for fid, gw in trio.cluster.frontiers.items():
        assert (listed[fid].advertised_sb_addr, listed[fid].advertised_eb_addr) == (gw.service_addr, gw.edge_addr)
        for edge in trio.edges[fid]:
            assert frontier_of_edge(trio.fl.rest_addr, edge.edge_id).frontier_id == fid


def test_call_reaches_edges_on_every_frontier(trio: Trio) -> None:
    for edge in trio.all_edges:
        assert trio.svc.call(edge.edge_id, "ping", b"x") == b"pong:%d:x" % edge.edge_id


def test_publish_reaches_edges_on_every_frontier(trio: Trio) -> None:
    got: queue.Queue = queue.Queue()

    def take(edge: Edge) -> None:
        msg = edge.receive(timeout=10)
        got.put((edge.edge_id, msg.data, msg.topic))
        msg.done()

    threads = [threading.Thread(target=take, args=(e,), daemon=True) for e in trio.all_edges]
    for t in threads:
        t.start()
    for edge in trio.all_edges:
        trio.svc.publish(edge.edge_id, b"hello %d" % edge.edge_id, topic="greeting")
    received = {got.get(timeout=10) for _ in trio.all_edges}
    assert received == {(e.edge_id, b"hello %d" % e.edge_id, "greeting") for e in trio.all_edges}


def test_open_stream_reaches_edges_on_every_frontier(trio: Trio) -> None:
    def serve(edge: Edge) -> None:
        stream = edge.accept_stream(timeout=10)
        data = b""
        while len(data) < 100_000:
            data += stream.recv(65536)
        stream.sendall(data[::-1])
        stream.close()

    for edge in trio.all_edges:
        t = threading.Thread(target=serve, args=(edge,), daemon=True)
        t.start()
        stream = trio.svc.open_stream(edge.edge_id)
        assert stream.edge_id == edge.edge_id
        payload = bytes(range(256)) * 390 + b"tail"  # 99_844 + 4 + padding below
        payload += b"." * (100_000 - len(payload))
        stream.sendall(payload)
        echoed = b""
        while len(echoed) < len(payload):
            echoed += stream.recv(65536)
        assert echoed == payload[::-1]
        stream.close()
        t.join(10)


def test_edges_on_every_frontier_reach_the_service(trio: Trio) -> None:
    for edge in trio.all_edges:
        assert edge.call("echo", b"e%d" % edge.edge_id) == b"echo:e%d" % edge.edge_id
        assert edge.call("who", b"") == str(edge.edge_id).encode()


def test_receive_merges_messages_from_every_frontier(trio: Trio) -> None:
    results: dict[int, BaseException | None] = {}

    def send(edge: Edge) -> None:
        try:
            edge.publish("telemetry", b"t%d" % edge.edge_id, timeout=10)
            results[edge.edge_id] = None
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[edge.edge_id] = exc

    threads = [threading.Thread(target=send, args=(e,), daemon=True) for e in trio.all_edges]
    for t in threads:
        t.start()
    seen = set()
    for _ in trio.all_edges:
        msg = trio.svc.receive(timeout=10)
        seen.add((msg.edge_id, msg.data))
        msg.done()
    for t in threads:
        t.join(10)
    assert seen == {(e.edge_id, b"t%d" % e.edge_id) for e in trio.all_edges}
    assert results == {e.edge_id: None for e in trio.all_edges}


def test_accept_stream_merges_streams_from_every_frontier(trio: Trio) -> None:
    opened = []
    for edge in trio.all_edges:
        stream = edge.open_stream("hub", timeout=10)
        stream.sendall(b"hi from %d" % edge.edge_id)
        opened.append(stream)
    accepted = [trio.svc.accept_stream(timeout=10) for _ in trio.all_edges]
    # Go's ListStreams over every frontier connection
    assert {st.edge_id for st in trio.svc.streams()} == {e.edge_id for e in trio.all_edges}
    got = {}
    for s in accepted:
        got[s.edge_id] = s.recv(100)
        s.close()
    assert got == {e.edge_id: b"hi from %d" % e.edge_id for e in trio.all_edges}
    assert trio.svc.streams() == []
    for s in opened:
        s.close()


def test_a_handler_error_does_not_tear_down_the_link(trio: Trio) -> None:
    ids_before = dict(trio.svc._members)
    for edge in trio.all_edges:
        with pytest.raises(RemoteError, match="bad request x"):
            edge.call("boom", b"x")
        assert edge.call("echo", b"after") == b"echo:after"
    for edge in trio.all_edges:  # and the service still reaches every edge through the same links
        assert trio.svc.call(edge.edge_id, "ping", b"y") == b"pong:%d:y" % edge.edge_id
    assert {fid: m.service_id for fid, (_, m) in trio.svc._members.items()} == {fid: m.service_id for fid, (_, m) in ids_before.items()}


def test_methods_registered_later_reach_every_frontier(trio: Trio) -> None:
    trio.svc.register("late", lambda req: b"late:" + req.data)
    for edge in trio.all_edges:
        assert edge.call("late", b"z") == b"late:z"


def test_unknown_edge_is_edge_not_online(trio: Trio) -> None:
    with pytest.raises(EdgeNotOnline):
        trio.svc.call(123456789, "ping", b"", timeout=3)
    with pytest.raises(EdgeNotOnline):
        trio.svc.publish(123456789, b"", timeout=3)
    with pytest.raises(EdgeNotOnline):
        trio.svc.open_stream(123456789, timeout=3)


def test_an_edge_frontlas_does_not_know_yet_is_still_found(trio: Trio) -> None:
    """Reports are batched: a brand-new edge may not be in Redis yet; the service asks
    each frontier before giving up (EdgeNotOnline delivered nothing, so this is safe)."""
    gw = trio.cluster.frontiers["fc"]
    edge = trio.cluster.client(Edge, gw.edge_addr)
    edge.register("ping", lambda req: b"fresh")
    assert trio.svc.call(edge.edge_id, "ping", b"") == b"fresh"


def test_cluster_edge_connects_through_frontlas(trio: Trio) -> None:
    edge = trio.cluster.client(ClusterEdge, trio.fl.rest_addr, meta=b"roaming")
    edge.register("ping", lambda req: b"roaming-pong")
    assert edge.frontier_addr in {gw.edge_addr for gw in trio.cluster.frontiers.values()}
    assert trio.svc.call(edge.edge_id, "ping", b"") == b"roaming-pong"
    assert edge.call("echo", b"r") == b"echo:r"


def test_hooks_run_for_edges_on_every_frontier(trio: Trio) -> None:
    online: queue.Queue = queue.Queue()
    trio.svc.register_edge_online(lambda edge_id, meta, addr: online.put(meta))
    for fid, gw in trio.cluster.frontiers.items():
        trio.cluster.client(Edge, gw.edge_addr, meta=f"hooked-{fid}".encode())
    metas = {online.get(timeout=10) for _ in FIDS}
    assert metas == {f"hooked-{fid}".encode() for fid in FIDS}
    trio.svc._hooks.clear()  # later tests' edges need no hook


def test_cluster_service_works_in_a_forked_child_and_the_parent_keeps_working(trio: Trio) -> None:
    """gunicorn --preload / Celery prefork: a ClusterService built before a fork reaches
    edges on every frontier from the child, and the parent's connections are untouched."""
    import os

    edges = [es[0] for es in trio.edges.values()]
    assert [trio.svc.call(e.edge_id, "ping", b"parent") for e in edges]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report over the pipe, never return into pytest
        code = 1
        try:
            answers = [trio.svc.call(e.edge_id, "ping", b"child", timeout=10) for e in edges]
            os.write(write_end, b"\n".join(answers))
            code = 0
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_end, 65536)
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0, report
    assert report.split(b"\n") == [b"pong:%d:child" % e.edge_id for e in edges]
    assert [trio.svc.call(e.edge_id, "ping", b"again") for e in edges] == [b"pong:%d:again" % e.edge_id for e in edges]
