"""``ClusterService.call_async`` / ``publish_async`` over three real frontiers and a
Frontlas: futures reach edges wherever they are (the known frontier without waiting,
an unknown edge through Frontlas on a helper thread) and raise the typed errors."""

from __future__ import annotations

import queue
import threading

import pytest

from frontier.sdk import Edge, EdgeNotOnline, RemoteError, Timeout
from tests.cluster.test_cluster_dataplane import Trio, trio  # noqa: F401  (the module's cluster fixture)

pytestmark = pytest.mark.timeout(120)


def test_call_async_reaches_edges_on_every_frontier(trio: Trio) -> None:  # noqa: F811
    futures = {edge.edge_id: trio.svc.call_async(edge.edge_id, "ping", b"a") for edge in trio.all_edges}
    for edge_id, future in futures.items():
        assert future.result(20) == b"pong:%d:a" % edge_id
    again = [trio.svc.call_async(e.edge_id, "ping", b"%d" % i) for i, e in enumerate(trio.all_edges * 5)]
    assert [f.result(20) for f in again] == [b"pong:%d:%d" % (e.edge_id, i) for i, e in enumerate(trio.all_edges * 5)]


def test_publish_async_reaches_edges_on_every_frontier(trio: Trio) -> None:  # noqa: F811
    got: queue.Queue = queue.Queue()

    def take(edge: Edge) -> None:
        msg = edge.receive(timeout=10)
        got.put((edge.edge_id, msg.data))
        msg.done()

    threads = [threading.Thread(target=take, args=(e,), daemon=True) for e in trio.all_edges]
    for t in threads:
        t.start()
    futures = [trio.svc.publish_async(e.edge_id, b"async %d" % e.edge_id, topic="note") for e in trio.all_edges]
    assert [f.result(20) for f in futures] == [None] * len(futures)
    assert {got.get(timeout=10) for _ in trio.all_edges} == {(e.edge_id, b"async %d" % e.edge_id) for e in trio.all_edges}


def test_async_typed_errors_and_deadline(trio: Trio) -> None:  # noqa: F811
    with pytest.raises(EdgeNotOnline):
        trio.svc.call_async(10**15, "ping", b"").result(30)
    edge = trio.all_edges[0]
    edge.register("fail", lambda req: (_ for _ in ()).throw(ValueError("no")))
    with pytest.raises(RemoteError, match="no"):
        trio.svc.call_async(edge.edge_id, "fail", b"").result(20)
    release = threading.Event()
    edge.register("hang", lambda req: release.wait(10) and b"late")
    try:
        with pytest.raises(Timeout):
            trio.svc.call_async(edge.edge_id, "hang", b"", timeout=0.5).result(20)
    finally:
        release.set()
