"""The Flask example under gunicorn --preload against a real gateway (issue 8).

2 workers x 4 threads (gthread), greenlets (gevent) and one-at-a-time (sync) workers
each serve 200 concurrent HTTP requests that call an edge through the gateway; every
one must succeed, and each worker process must hold its own gateway connection.
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict

import pytest

from frontier.sdk import Edge
from tests.e2e.proc_tools import ROOT, ChildProcess, wait_until
from tests.examples.support import concurrently, gunicorn, http
from tests.gateway import GatewayProcess

APP_DIR = ROOT / "sdk" / "examples" / "flask_app"
DEVICE_ID = 7001


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    # the app's hook-fed directory is per worker: every worker must hear every edge
    with GatewayProcess(tmp_path_factory.mktemp("flaskgw"), {"exchange": {"edge_hooks": "all"}}, control=True) as gw:
        yield gw


@pytest.fixture(scope="module")
def device(gw):
    proc = ChildProcess([str(APP_DIR / "device.py"), "--edge-addr", gw.edge_addr, "--edge-id", str(DEVICE_ID),
                         "--meta", "sensor-1"])
    proc.expect(f"device {DEVICE_ID} online", 10)
    yield proc
    proc.terminate()


def control_services(gw: GatewayProcess, name: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{gw.control_addr}/v1/services?service={name}&page_size=100", timeout=5) as r:
        return json.load(r)["services"]


@pytest.mark.parametrize("worker_class", ["gthread", "gevent", "sync"])
def test_flask_app_under_gunicorn_preload(gw, device, tmp_path, worker_class):
    name = f"flask-{worker_class}"
    web = gunicorn(APP_DIR, "app:app", worker_class=worker_class, log=tmp_path / "gunicorn.log",
                   env={"FRONTIER_SERVICE_ADDR": gw.service_addr, "FRONTIER_SERVICE_NAME": name,
                        "FRONTIER_CONTROL_URL": f"http://{gw.control_addr}", "FRONTIER_TIMEOUT": "20"})
    try:
        # the edge list, from the gateway's control plane
        listed = wait_until(lambda: http("GET", f"{web.url}/edges").json(), 10, what="GET /edges")
        assert listed["source"] == "controlplane"
        assert DEVICE_ID in [e["edge_id"] for e in listed["edges"]]
        assert [e["meta"] for e in listed["edges"] if e["edge_id"] == DEVICE_ID] == ["sensor-1"]

        # 200 concurrent requests, each an RPC to the edge through the gateway
        seen: dict[str, set[str]] = defaultdict(set)
        for batch in range(3):  # until both workers took some (the kernel picks who accepts)
            answers = concurrently(200, lambda i: http("POST", f"{web.url}/edges/{DEVICE_ID}/call/echo",
                                                       b"req-%d-%d" % (batch, i)))
            bad = [(i, a) for i, a in enumerate(answers) if getattr(a, "status", None) != 200
                   or a.body != b"req-%d-%d" % (batch, i)]
            assert not bad, f"{len(bad)} of 200 failed, e.g. {bad[:3]}\n{web.log()[-3000:]}"
            for a in answers:
                seen[a.headers["X-Worker-Pid"]].add(a.headers["X-Service-Id"])
            if len(seen) >= 2:
                break
        assert len(seen) == 2, f"expected both workers to serve: {dict(seen)}"
        # one connection per worker process, never shared
        assert all(len(ids) == 1 for ids in seen.values()), dict(seen)
        worker_ids = {next(iter(ids)) for ids in seen.values()}
        assert len(worker_ids) == 2, dict(seen)
        listed_ids = {str(s["service_id"]) for s in control_services(gw, name)}
        # the master's connection (made before the fork) plus one per worker
        assert worker_ids < listed_ids and len(listed_ids) == 3, (worker_ids, listed_ids)

        # publish to the edge: 204 once the device acked it
        answer = http("POST", f"{web.url}/edges/{DEVICE_ID}/publish?topic=note", f"hello-{worker_class}".encode())
        assert answer.status == 204, answer
        device.expect(f"message topic='note' data=hello-{worker_class}", 5)

        # typed SDK errors become HTTP statuses
        answer = http("POST", f"{web.url}/edges/424242/call/echo", b"x")
        assert answer.status == 404 and answer.json()["error"] == "EdgeNotOnline", answer
        answer = http("POST", f"{web.url}/edges/{DEVICE_ID}/call/no-such-method", b"x")
        assert answer.status == 404 and answer.json()["error"] == "RpcNotOnline", answer

        # the hooks: every worker hears an edge come and go
        late_id = DEVICE_ID + 100 + ["gthread", "gevent", "sync"].index(worker_class)
        late = ChildProcess([str(APP_DIR / "device.py"), "--edge-addr", gw.edge_addr, "--edge-id", str(late_id),
                             "--meta", "late", "--greet"])
        try:
            late.expect(f"device {late_id} online", 10)
            # the app's greet RPC, answered by one of gunicorn's processes
            greet = late.expect("greet: ", 10)
            assert greet.startswith("greet: hello late from pid "), greet
            assert greet.rsplit(" ", 1)[1] in set(seen) | {str(web.proc.pid)}, greet

            def hook_views(present: bool) -> bool:
                views = {}
                for _ in range(40):
                    body = http("GET", f"{web.url}/edges?source=hooks").json()
                    views[str(body["pid"])] = late_id in [e["edge_id"] for e in body["edges"]]
                    if set(views) >= set(seen):
                        break
                return set(views) >= set(seen) and all(v == present for v in views.values())

            wait_until(lambda: hook_views(True), 10, what="every worker listing the late edge (edge_online)")
        finally:
            assert late.terminate() == 0
        wait_until(lambda: hook_views(False), 10, what="every worker dropping the late edge (edge_offline)")
    finally:
        code = web.stop()
    assert code == 0, web.log()[-3000:]
    wait_until(lambda: not control_services(gw, name), 5, what="all service connections closed")


def test_an_edge_reaches_the_apps_rpc_and_its_hooks_can_refuse_nothing(gw, device, tmp_path):
    """Without a control plane URL the app lists edges from its hooks; the master's
    connection (made at import, before any fork) serves RPCs too."""
    web = gunicorn(APP_DIR, "app:app", worker_class="gthread", workers=1, log=tmp_path / "gunicorn.log",
                   env={"FRONTIER_SERVICE_ADDR": gw.service_addr, "FRONTIER_SERVICE_NAME": "flask-hooks"})
    try:
        http("POST", f"{web.url}/edges/{DEVICE_ID}/call/status", b"")  # the worker connects
        with Edge(gw.edge_addr, meta=b"probe", timeout=5) as probe:
            assert probe.call("greet", b"probe").startswith(b"hello probe from pid ")
            body = wait_until(lambda: (lambda b: b if probe.edge_id in [e["edge_id"] for e in b["edges"]] else None)(
                http("GET", f"{web.url}/edges").json()), 10, what="the probe edge in the hook directory")
            assert body["source"] == "hooks"
            entry = [e for e in body["edges"] if e["edge_id"] == probe.edge_id][0]
            assert entry["meta"] == "probe" and entry["addr"].startswith("127.0.0.1:")
    finally:
        assert web.stop() == 0
