"""The query store: both backends against a plain-Python oracle of the documented rules."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontier.control.query import (
    Page,
    make_edge_query,
    make_edge_rpc_query,
    make_service_names_query,
    make_service_query,
    text_of,
)
from frontier.control.store import QueryStore, make_store
from frontier.sessions.info import EdgeInfo, ServiceInfo
from frontier.wire.errors import ConfigError, InvalidArgument

BACKENDS = ("buntdb", "memory", "sqlite3")


@pytest.fixture(params=BACKENDS)
def store(request) -> QueryStore:
    s = make_store(request.param)
    yield s
    s.close()


def edge(i: int, *, meta: bytes = b"", addr: str = "", t: float = 0.0, rpcs=()) -> EdgeInfo:
    return EdgeInfo(i, meta or b"meta-%d" % i, addr or f"10.0.0.{i}:4000", t or 1000.0 + i, tuple(rpcs))


def service(i: int, name: str = "svc", *, addr: str = "", t: float = 0.0, rpcs=(), topics=()) -> ServiceInfo:
    return ServiceInfo(i, name, addr or f"10.1.0.{i}:5000", t or 2000.0 + i, tuple(rpcs), tuple(topics))


def test_make_store_names_and_unknown_backend():
    assert make_store("buntdb").backend == "memory"
    assert make_store("").backend == "memory"
    assert make_store("SQLite3").backend == "sqlite3"
    with pytest.raises(ConfigError, match="dao.backend"):
        make_store("mysql")


def test_lifecycle_online_updated_offline(store):
    e = edge(7, rpcs=["a"])
    store.edge_online(e)
    assert store.get_edge(7) == e
    e2 = EdgeInfo(7, e.meta, e.addr, e.created_at, ("a", "b"))
    store.edge_updated(e2)
    assert store.get_edge(7).rpcs == ("a", "b")
    store.edge_offline(e2)
    assert store.get_edge(7) is None
    assert store.counts() == (0, 0)

    s = service(3, rpcs=["r"], topics=["t"])
    store.service_online(s)
    assert store.get_service(3) == s
    s2 = ServiceInfo(3, s.name, s.addr, s.created_at, ("r", "q"), ("t", "u"))
    store.service_updated(s2)
    assert store.get_service(3) == s2
    assert store.counts() == (0, 1)
    store.service_offline(s)
    assert store.get_service(3) is None


def test_late_offline_of_old_connection_keeps_new_one(store):
    old = edge(5, addr="1.1.1.1:1", t=10.0)
    new = edge(5, addr="1.1.1.1:2", t=11.0)
    store.edge_online(old)
    store.edge_online(new)  # duplicate edge id: the newer connection wins
    store.edge_offline(old)  # the old connection's offline arrives late
    assert store.get_edge(5) == new
    store.edge_updated(EdgeInfo(5, old.meta, old.addr, old.created_at, ("x",)))  # stale update ignored
    assert store.get_edge(5).rpcs == ()
    store.edge_updated(EdgeInfo(6, b"", "a", 1.0, ("x",)))  # unknown id: not resurrected
    assert store.get_edge(6) is None


def test_full_uint64_ids_and_binary_meta(store):
    big = 2**64 - 1
    e = EdgeInfo(big, b"\xff\x00bin", "[::1]:9", 5.25, ("r\u00e9",))
    store.edge_online(e)
    store.edge_online(edge(0))
    assert store.get_edge(big) == e
    page = store.list_edges(make_edge_query(order="-edge_id"))
    assert [x.edge_id for x in page.items] == [big, 0]
    assert store.list_edges(make_edge_query(meta="\ufffd\x00b")).items == (e,)
    assert store.list_edges(make_edge_query(edge_id=big)).count == 1


def test_true_count_and_pagination(store):
    for i in range(1, 26):
        store.edge_online(edge(i, rpcs=["echo"] if i % 2 else []))
    p1 = store.list_edges(make_edge_query(page=1, page_size=10, order="+edge_id"))
    p3 = store.list_edges(make_edge_query(page=3, page_size=10, order="+edge_id"))
    assert p1.count == p3.count == 25
    assert [e.edge_id for e in p1.items] == list(range(1, 11))
    assert [e.edge_id for e in p3.items] == list(range(21, 26))
    assert store.list_edges(make_edge_query(page=4, page_size=10)).items == ()
    odd = store.list_edges(make_edge_query(rpc="echo", page_size=100))
    assert odd.count == 13 and all(e.edge_id % 2 for e in odd.items)
    # default order: newest first
    assert store.list_edges(make_edge_query()).items[0].edge_id == 25


def test_time_range_is_half_open(store):
    for i in range(5):
        store.edge_online(edge(i, t=100.0 + i))
    got = store.list_edges(make_edge_query(start_time=101, end_time=103, order="create_time"))
    assert [e.edge_id for e in got.items] == [1, 2] and got.count == 2
    for start, end in ((103, 103), (104, 101)):  # an empty range holds nothing
        got = store.list_edges(make_edge_query(start_time=start, end_time=end))
        assert not got.items and got.count == 0


def test_service_filters(store):
    store.service_online(service(1, "billing", rpcs=["pay", "refund"], topics=["orders"]))
    store.service_online(service(2, "billing-eu", rpcs=["pay"], topics=[]))
    store.service_online(service(3, "audit", rpcs=[], topics=["orders", "logs"]))
    assert store.list_services(make_service_query(service="billing")).count == 2
    assert store.list_services(make_service_query(rpc="refund")).items[0].service_id == 1
    assert {s.service_id for s in store.list_services(make_service_query(topic="orders")).items} == {1, 3}
    assert store.list_services(make_service_query(service_id=2)).count == 1
    rpcs = store.list_service_rpcs(make_service_names_query(kind="rpc", order="rpc"))
    assert rpcs == Page(("pay", "refund"), 2)
    topics = store.list_service_topics(make_service_names_query(kind="topic", service="audit", order="-topic"))
    assert topics == Page(("orders", "logs"), 2)
    assert store.list_service_topics(make_service_names_query(kind="topic", service_id=2)).count == 0


def test_bad_queries_are_invalid_argument():
    for kwargs in (
        {"page": -1},
        {"page_size": -5},
        {"page_size": 1001},
        {"order": "-nope"},
        {"order": "--create_time"},
        {"start_time": -1},
        {"page": 2**62},
        {"edge_id": 2**64},
        {"page": True},
    ):
        with pytest.raises(InvalidArgument):
            make_edge_query(**kwargs)
    with pytest.raises(InvalidArgument):
        make_service_names_query(kind="topic", order="rpc")
    # "+" decoded from a URL arrives as a space
    assert make_edge_query(order=" meta").window.order.desc is False


# -- property: both backends equal a naive oracle of the documented semantics ---------

texts = st.text(alphabet="ab\u00e9\U0001f600\x00", max_size=3)
names = st.sampled_from(["a", "b", "ab", "\u00e9", ""])
times = st.integers(0, 6).map(float) | st.floats(0, 6, allow_nan=False)
ids = st.integers(0, 6) | st.just(2**64 - 1) | st.just(2**63)

edges_st = st.lists(
    st.builds(
        EdgeInfo,
        edge_id=ids,
        meta=st.binary(max_size=3) | texts.map(lambda s: s.encode()),
        addr=texts,
        created_at=times,
        rpcs=st.lists(names, max_size=3).map(tuple),
    ),
    max_size=12,
)
services_st = st.lists(
    st.builds(
        ServiceInfo,
        service_id=ids,
        name=texts,
        addr=texts,
        created_at=times,
        rpcs=st.lists(names, max_size=3).map(tuple),
        topics=st.lists(names, max_size=3).map(tuple),
    ),
    max_size=12,
)
window_st = st.fixed_dictionaries(
    {},
    optional={
        "page": st.integers(0, 4),
        "page_size": st.integers(0, 4),
        "start_time": st.integers(0, 3),
        "end_time": st.integers(4, 7),
    },
)


def _in(t, w):
    return (w.start_time is None or t >= w.start_time) and (w.end_time is None or t < w.end_time)


def _paged(items, w):
    return tuple(items[w.offset:w.offset + w.page_size])


def _sorted(records, key, ident, order):
    out = sorted(records, key=ident)
    out.sort(key=key, reverse=order.desc)
    return out


def oracle_edges(edges, q):
    w = q.window
    hits = [
        e
        for e in edges
        if (q.meta is None or text_of(e.meta).startswith(q.meta))
        and (q.addr is None or text_of(e.addr).startswith(q.addr))
        and (q.rpc is None or q.rpc in map(text_of, e.rpcs))
        and (q.edge_id is None or e.edge_id == q.edge_id)
        and _in(e.created_at, w)
    ]
    keys = {
        "create_time": lambda e: e.created_at,
        "edge_id": lambda e: e.edge_id,
        "meta": lambda e: text_of(e.meta),
        "addr": lambda e: text_of(e.addr),
    }
    hits = _sorted(hits, keys[w.order.field], lambda e: e.edge_id, w.order)
    return Page(_paged(hits, w), len(hits))


def oracle_names(owners, w):
    seen = {}
    for t, ns in owners:
        for n in map(text_of, ns):
            seen[n] = min(seen.get(n, t), t)
    keys = {"create_time": seen.__getitem__}
    names = _sorted(list(seen), keys.get(w.order.field, lambda n: n), lambda n: n, w.order)
    return Page(_paged(names, w), len(names))


def oracle_services(services, q):
    w = q.window
    hits = [
        s
        for s in services
        if (q.service is None or text_of(s.name).startswith(q.service))
        and (q.addr is None or text_of(s.addr).startswith(q.addr))
        and (q.rpc is None or q.rpc in map(text_of, s.rpcs))
        and (q.topic is None or q.topic in map(text_of, s.topics))
        and (q.service_id is None or s.service_id == q.service_id)
        and _in(s.created_at, w)
    ]
    keys = {
        "create_time": lambda s: s.created_at,
        "service_id": lambda s: s.service_id,
        "service": lambda s: text_of(s.name),
        "addr": lambda s: text_of(s.addr),
    }
    hits = _sorted(hits, keys[w.order.field], lambda s: s.service_id, w.order)
    return Page(_paged(hits, w), len(hits))


def _latest(records, ident):
    out = {}
    for r in records:
        out[ident(r)] = r
    return list(out.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edges=edges_st,
    window=window_st,
    order=st.sampled_from(["", "meta", "-meta", "+addr", "-edge_id", "create_time", "-create_time"]),
    rpc_order=st.sampled_from(["", "rpc", "-rpc", "+create_time"]),
    meta=st.none() | texts,
    addr=st.none() | texts,
    rpc=st.none() | names,
    edge_id=st.none() | ids,
    drop=st.lists(st.integers(0, 11), max_size=4),
)
def test_edges_match_oracle(edges, window, order, rpc_order, meta, addr, rpc, edge_id, drop):
    stores = [make_store(b) for b in ("memory", "sqlite3")]
    for s in stores:
        for e in edges:
            s.edge_online(e)
    live = _latest(edges, lambda e: e.edge_id)
    for i in drop:
        if i < len(edges):
            for s in stores:
                s.edge_offline(edges[i])
            gone = edges[i]  # the store drops the record only if it is the same connection
            live = [e for e in live if not (e.edge_id == gone.edge_id and e.addr == gone.addr
                                            and e.created_at == gone.created_at)]
    q = make_edge_query(meta=meta, addr=addr, rpc=rpc, edge_id=edge_id, order=order, **window)
    rq = make_edge_rpc_query(meta=meta, edge_id=edge_id, order=rpc_order, **window)
    want = oracle_edges(live, q)
    want_rpcs = oracle_names(
        [(e.created_at, e.rpcs) for e in live
         if (rq.meta is None or text_of(e.meta).startswith(rq.meta))
         and (rq.edge_id is None or e.edge_id == rq.edge_id) and _in(e.created_at, rq.window)],
        rq.window,
    )
    for s in stores:
        assert s.list_edges(q) == want, s.backend
        assert s.list_edge_rpcs(rq) == want_rpcs, s.backend
        assert s.counts()[0] == len(live)
        s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    services=services_st,
    window=window_st,
    order=st.sampled_from(["", "service", "-service", "+addr", "-service_id", "create_time"]),
    name_order=st.sampled_from(["", "-create_time", "name"]),
    name=st.none() | texts,
    addr=st.none() | texts,
    rpc=st.none() | names,
    topic=st.none() | names,
    service_id=st.none() | ids,
)
def test_services_match_oracle(services, window, order, name_order, name, addr, rpc, topic, service_id):
    stores = [make_store(b) for b in ("memory", "sqlite3")]
    for s in stores:
        for svc in services:
            s.service_online(svc)
    live = _latest(services, lambda s: s.service_id)
    q = make_service_query(service=name, addr=addr, rpc=rpc, topic=topic, service_id=service_id, order=order, **window)
    want = oracle_services(live, q)
    owners = [
        x for x in live
        if (name in (None, "") or text_of(x.name).startswith(name))
        and (service_id is None or x.service_id == service_id)
    ]
    for kind, attr in (("rpc", "rpcs"), ("topic", "topics")):
        nq = make_service_names_query(
            kind=kind, service=name, service_id=service_id,
            order=name_order.replace("name", kind), **window,
        )
        want_names = oracle_names([(x.created_at, getattr(x, attr)) for x in owners if _in(x.created_at, nq.window)], nq.window)
        for s in stores:
            got = s.list_service_rpcs(nq) if kind == "rpc" else s.list_service_topics(nq)
            assert got == want_names, (s.backend, kind)
    for s in stores:
        assert s.list_services(q) == want, s.backend
        s.close()


def test_observer_errors_never_reach_the_gateway(store, caplog):
    store.edge_online(EdgeInfo(1, None, "a", 1.0))  # type: ignore[arg-type]  (a broken record)
    store.service_online(ServiceInfo(1, None, "a", 1.0))  # type: ignore[arg-type]
    assert "failed" in caplog.text
    store.edge_online(edge(2))
    assert store.get_edge(2) is not None


@pytest.mark.parametrize("backend", ["memory", "sqlite3"])
def test_debug_logs_queries(backend, caplog):
    import logging

    s = make_store(backend, debug=True)
    with caplog.at_level(logging.DEBUG, logger="frontier.control.store"):
        s.list_edges(make_edge_query(meta="x"))
    assert "query store" in caplog.text
    s.close()
