"""The Flask app in-process (no gevent needed): failures the network tests cannot provoke."""

from __future__ import annotations

import pytest

from frontier.control.auth import BearerTokens
from frontier.control.rest import create_app
from frontier.control.service import ControlService
from frontier.control.store import make_store
from frontier.sessions.info import EdgeInfo


class ExplodingKicker:
    def kick_edge(self, edge_id, reconnect=True):
        raise RuntimeError("secret internal detail")

    def kick_service(self, service_id, reconnect=True):
        return True


class BrokenStore:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ZeroDivisionError("boom")

        return fail


@pytest.fixture
def client():
    store = make_store("memory")
    store.edge_online(EdgeInfo(1, b"m", "a", 1.0))
    return create_app(ControlService(store, ExplodingKicker())).test_client()


def test_kicker_failure_is_500_json_without_details(client, caplog):
    resp = client.delete("/v1/edges/1")
    assert resp.status_code == 500
    body = resp.get_json()
    assert body["code"] == 500 and body["reason"] == "INTERNAL"
    assert "secret" not in resp.get_data(as_text=True) and "Traceback" not in resp.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # but the operator's log has it


def test_store_failure_is_500_json():
    app = create_app(ControlService(BrokenStore(), ExplodingKicker()))
    resp = app.test_client().get("/v1/edges")
    assert resp.status_code == 500 and resp.get_json()["reason"] == "INTERNAL"
    assert "boom" not in resp.get_data(as_text=True)


def test_ready_raising_is_503():
    def ready():
        raise OSError("disk")

    app = create_app(ControlService(make_store("memory"), ExplodingKicker()), ready=ready)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["reason"] == "NOT_READY"


def test_bearer_tokens():
    assert BearerTokens().check(None) and not BearerTokens().enabled
    t = BearerTokens(["a b", "", "tok"])
    assert t.enabled
    assert t.check("Bearer tok") and t.check("BEARER  tok ") and not t.check("Bearer to")
    assert not t.check(None) and not t.check("") and not t.check("tok") and not t.check("Bearer")
    assert not t.check("Bearer \u00e9")
