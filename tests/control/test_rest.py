"""Every REST path over real HTTP against a ControlPlane in a patched subprocess, both backends."""

from __future__ import annotations

import pytest
from cp_records import T0

pytestmark = pytest.mark.timeout(120)


def ids(body, key="edges", ident="edge_id"):
    return [x[ident] for x in body[key]]


def ok(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


# -- edges -----------------------------------------------------------------------------


def test_list_edges_default_page_newest_first(shared_cp):
    body = ok(shared_cp.get("/v1/edges"))
    assert body["count"] == 12
    assert ids(body) == list(range(12, 2, -1))
    first = body["edges"][0]
    assert first == {
        "edge_id": 12,
        "meta": "sensor-12",
        "addr": "10.0.1.12:5012",
        "create_time": T0 + 120,
        "rpcs": ["echo", "reboot"],
    }


def test_list_edges_pagination_and_true_count(shared_cp):
    body = ok(shared_cp.get("/v1/edges", params={"page": 2, "page_size": 5, "order": "edge_id"}))
    assert ids(body) == [6, 7, 8, 9, 10] and body["count"] == 12
    body = ok(shared_cp.get("/v1/edges", params={"page": 3, "page_size": 5, "order": "edge_id"}))
    assert ids(body) == [11, 12] and body["count"] == 12
    body = ok(shared_cp.get("/v1/edges", params={"page": 9, "page_size": 5}))
    assert body == {"edges": [], "count": 12}


@pytest.mark.parametrize(
    "params, want, count",
    [
        ({"meta": "dev", "order": "edge_id", "page_size": 100}, list(range(1, 9)), 8),
        ({"meta": "sensor", "order": "-edge_id"}, [12, 11, 10, 9], 4),
        ({"addr": "10.0.1.", "order": "+edge_id"}, [10, 11, 12], 3),
        ({"rpc": "reboot", "order": "edge_id"}, [4, 8, 12], 3),
        ({"meta": "dev", "rpc": "reboot", "order": "edge_id"}, [4, 8], 2),
        ({"edge_id": 5}, [5], 1),
        ({"edge_id": 99}, [], 0),
        ({"start_time": T0 + 30, "end_time": T0 + 60, "order": "create_time"}, [3, 4, 5], 3),
        ({"start_time": T0 + 100}, [12, 11, 10], 3),
        ({"end_time": T0 + 21, "order": "+create_time"}, [1, 2], 2),
        ({"rpc": "echo", "page_size": 2, "page": 2, "order": "edge_id"}, [4, 5], 9),
        ({"meta": "", "rpc": ""}, list(range(12, 2, -1)), 12),  # empty filter = no filter
    ],
)
def test_list_edges_filters(shared_cp, params, want, count):
    body = ok(shared_cp.get("/v1/edges", params=params))
    assert ids(body) == want
    assert body["count"] == count


def test_list_edges_order_by_text(shared_cp):
    body = ok(shared_cp.get("/v1/edges", params={"order": "meta", "page_size": 12}))
    metas = [e["meta"] for e in body["edges"]]
    assert metas == sorted(metas) and metas[-1] == "sensor-9"
    # an unescaped "+" arrives as a space; it still means ascending
    body2 = ok(shared_cp.get("/v1/edges?order=+meta&page_size=12"))
    assert [e["meta"] for e in body2["edges"]] == metas
    body3 = ok(shared_cp.get("/v1/edges", params={"order": "-addr", "page_size": 3}))
    assert ids(body3) == [12, 11, 10]


def test_get_edge_and_not_found(shared_cp):
    assert ok(shared_cp.get("/v1/edges/4"))["rpcs"] == ["echo", "reboot"]
    resp = shared_cp.get("/v1/edges/4242")
    assert resp.status_code == 404
    assert resp.json() == {"code": 404, "reason": "EDGE_NOT_ONLINE", "message": "edge 4242 is not online"}


def test_literal_paths_win_over_ids(shared_cp):
    assert "rpcs" in ok(shared_cp.get("/v1/edges/rpcs"))
    assert "rpcs" in ok(shared_cp.get("/v1/services/rpcs"))
    assert "topics" in ok(shared_cp.get("/v1/services/topics"))
    assert shared_cp.delete("/v1/edges/rpcs").status_code == 405  # "rpcs" is no id: only GET is there
    assert shared_cp.delete("/v1/services/topics").status_code == 405


@pytest.mark.parametrize(
    "params, want, count",
    [
        ({}, ["reboot", "echo"], 2),  # newest first: reboot first seen at edge 4, echo at edge 1
        ({"order": "rpc"}, ["echo", "reboot"], 2),
        ({"order": "-rpc", "page_size": 1, "page": 2}, ["echo"], 2),
        ({"edge_id": 2}, [], 0),
        ({"edge_id": 8}, ["echo", "reboot"], 2),  # same time: ties by name
        ({"meta": "sensor", "order": "rpc"}, ["echo", "reboot"], 2),
        ({"meta": "dev", "end_time": T0 + 40, "order": "rpc"}, ["echo"], 1),
    ],
)
def test_list_edge_rpcs(shared_cp, params, want, count):
    body = ok(shared_cp.get("/v1/edges/rpcs", params=params))
    assert body == {"rpcs": want, "count": count}


# -- services ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, want, count",
    [
        ({}, [105, 104, 103, 102, 101], 5),
        ({"service": "billing", "order": "service_id"}, [101, 102, 104], 3),
        ({"rpc": "refund", "order": "service_id"}, [101, 102], 2),
        ({"topic": "orders", "order": "service_id"}, [101, 102, 103], 3),
        ({"service_id": 104}, [104], 1),
        ({"addr": "10.2.", "order": "-service_id"}, [105, 104], 2),
        ({"order": "service"}, [103, 101, 102, 104, 105], 5),  # ties (billing x2) by id
        ({"order": "-service", "page_size": 2, "page": 2}, [101, 102], 5),
        ({"start_time": T0 + 2, "end_time": T0 + 4, "order": "create_time"}, [102, 103], 2),
        ({"service": "billing", "topic": "orders", "rpc": "pay"}, [102, 101], 2),
    ],
)
def test_list_services(shared_cp, params, want, count):
    body = ok(shared_cp.get("/v1/services", params=params))
    assert ids(body, "services", "service_id") == want
    assert body["count"] == count


def test_get_service_and_not_found(shared_cp):
    assert ok(shared_cp.get("/v1/services/103")) == {
        "service_id": 103,
        "service": "audit",
        "addr": "10.1.0.3:6003",
        "create_time": T0 + 3,
        "rpcs": [],
        "topics": ["orders", "logs"],
    }
    resp = shared_cp.get("/v1/services/7")
    assert resp.status_code == 404 and resp.json()["reason"] == "SERVICE_NOT_ONLINE"


@pytest.mark.parametrize(
    "params, want, count",
    [
        ({}, ["say", "pay", "refund"], 3),
        ({"order": "rpc"}, ["pay", "refund", "say"], 3),
        ({"service": "billing", "order": "-rpc"}, ["refund", "pay"], 2),
        ({"service_id": 105}, ["say"], 1),
        ({"service_id": 103}, [], 0),
        ({"page_size": 2, "page": 2, "order": "rpc"}, ["say"], 3),
    ],
)
def test_list_service_rpcs(shared_cp, params, want, count):
    assert ok(shared_cp.get("/v1/services/rpcs", params=params)) == {"rpcs": want, "count": count}


@pytest.mark.parametrize(
    "params, want, count",
    [
        ({}, ["messages", "logs", "orders"], 3),
        ({"order": "topic"}, ["logs", "messages", "orders"], 3),
        ({"service": "audit", "order": "+topic"}, ["logs", "orders"], 2),
        ({"service_id": 104}, [], 0),
        ({"end_time": T0 + 3, "order": "topic"}, ["orders"], 1),
    ],
)
def test_list_service_topics(shared_cp, params, want, count):
    assert ok(shared_cp.get("/v1/services/topics", params=params)) == {"topics": want, "count": count}


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/edges?page=-1",
        "/v1/edges?page=abc",
        "/v1/edges?page=1.5",
        "/v1/edges?page_size=-3",
        "/v1/edges?page_size=100000",
        "/v1/edges?page=99999999999999999999999999",
        "/v1/edges?order=-nope",
        "/v1/edges?order=--create_time",
        "/v1/edges?order=rpc",
        "/v1/edges?start_time=-5",
        "/v1/edges?start_time=x",
        "/v1/edges?page=0",
        "/v1/edges?page_size=",
        "/v1/edges?end_time=1e9",
        "/v1/edges?edge_id=-1",
        "/v1/edges?edge_id=18446744073709551616",
        "/v1/edges?unknown=1",
        "/v1/edges?page=1&page=2",
        "/v1/edges?page=%EF%BC%91",  # fullwidth digit one: not ASCII
        "/v1/edges/rpcs?order=meta",
        "/v1/edges/rpcs?rpc=echo",
        "/v1/edges/abc",
        "/v1/edges/-4",
        "/v1/edges/18446744073709551616",
        "/v1/edges/4?x=1",
        "/v1/services?order=topic",
        "/v1/services?service_id=a",
        "/v1/services/rpcs?order=topic",
        "/v1/services/topics?order=rpc",
        "/v1/services/topics?page_size=0x10",
        "/v1/services/1.5",
    ],
)
def test_bad_input_is_400_json(shared_cp, path):
    resp = shared_cp.get(path)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 400 and body["reason"] == "INVALID_ARGUMENT" and body["message"]
    assert "Traceback" not in resp.text


def test_bad_input_messages_name_the_field(shared_cp):
    assert "page_size" in shared_cp.get("/v1/edges?page_size=5000").json()["message"]
    assert "create_time" in shared_cp.get("/v1/edges?order=bogus").json()["message"]
    assert "end_time" in shared_cp.get("/v1/edges?end_time=-5").json()["message"]


def test_unknown_path_and_method_are_json(shared_cp):
    resp = shared_cp.get("/v2/edges")
    assert resp.status_code == 404 and resp.json()["code"] == 404
    resp = shared_cp.session.post(shared_cp.url + "/v1/edges", timeout=10)
    assert resp.status_code == 405 and resp.json()["code"] == 405
    assert "GET" in resp.headers["Allow"]
    resp = shared_cp.session.put(shared_cp.url + "/v1/edges/1", timeout=10)
    assert resp.status_code == 405


def test_page_and_page_size_left_out_take_the_defaults(shared_cp):
    body = ok(shared_cp.get("/v1/edges"))
    assert len(body["edges"]) == 10  # page 1 of 10 (over REST, 0 is refused: pages count from 1)


# -- kick ----------------------------------------------------------------------------------------


def test_kick_edge(fresh_cp):
    resp = fresh_cp.delete("/v1/edges/3")
    assert resp.status_code == 200 and resp.json() == {}
    assert fresh_cp.kicks() == ["edge 3"]
    assert fresh_cp.get("/v1/edges/3").status_code == 404
    assert ok(fresh_cp.get("/v1/edges"))["count"] == 11
    again = fresh_cp.delete("/v1/edges/3")
    assert again.status_code == 404 and again.json()["reason"] == "EDGE_NOT_ONLINE"
    assert fresh_cp.delete("/v1/edges/777").status_code == 404
    assert fresh_cp.kicks() == ["edge 3", "edge 3", "edge 777"]


def test_kick_service(fresh_cp):
    assert fresh_cp.delete("/v1/services/105").status_code == 200
    assert fresh_cp.kicks() == ["service 105"]
    assert fresh_cp.get("/v1/services/105").status_code == 404
    assert ok(fresh_cp.get("/v1/services/rpcs"))["rpcs"] == ["pay", "refund"]
    resp = fresh_cp.delete("/v1/services/105")
    assert resp.status_code == 404 and resp.json()["reason"] == "SERVICE_NOT_ONLINE"
