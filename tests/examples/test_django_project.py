"""The Django example against a real gateway: ``manage.py frontier_service`` (RPCs,
a topic, hooks, an upload stream) and the views served by ``manage.py runserver``."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.e2e.proc_tools import ROOT, ChildProcess, wait_until
from tests.examples.support import WebServer, concurrently, http
from tests.gateway import GatewayProcess, free_port

PROJECT = ROOT / "sdk" / "examples" / "django_project"
EDGE_ID = 8001


@pytest.fixture
def gw(tmp_path):
    with GatewayProcess(tmp_path / "gw", control=True) as gw:
        yield gw


def test_management_command_and_views(gw, tmp_path):
    uploads = tmp_path / "uploads"
    env = {"FRONTIER_SERVICE_ADDR": gw.service_addr, "FRONTIER_CONTROL_URL": f"http://{gw.control_addr}",
           "FRONTIER_UPLOAD_DIR": str(uploads), "DJANGO_SETTINGS_MODULE": "frontier_demo.settings",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{PROJECT}"}
    payload = os.urandom(300_000) + b"end of the log\n"
    log_file = tmp_path / "device.log"
    log_file.write_bytes(payload)
    procs: list[ChildProcess] = []
    web = None
    try:
        worker = ChildProcess([str(PROJECT / "manage.py"), "frontier_service"], env=env)
        procs.append(worker)
        worker.expect("frontier service 'django-worker' ready", 15)

        device = ChildProcess([str(PROJECT / "device.py"), "--edge-addr", gw.edge_addr, "--edge-id", str(EDGE_ID),
                               "--meta", "pump-3", "--upload", str(log_file)])
        procs.append(device)
        device.expect(f"device {EDGE_ID} online", 10)
        worker.expect(f"edge {EDGE_ID} online (pump-3) from 127.0.0.1:", 5)
        # the command's RPCs
        assert json.loads(device.expect("config: ", 5).split(": ", 1)[1]) == {"report_every": 30, "telemetry_topic": "telemetry"}
        assert json.loads(device.expect("report answer: ", 5).split(": ", 1)[1]) == {"stored": 1}
        worker.expect(f'report from edge {EDGE_ID}: {{"at": ', 5)
        # its topic
        device.expect("telemetry sent", 5)
        worker.expect(f"telemetry from edge {EDGE_ID}: battery=87%", 5)
        # its upload stream
        answer = json.loads(device.expect("upload answer: ", 15).split(": ", 1)[1])
        digest = hashlib.sha256(payload).hexdigest()
        assert answer["sha256"] == digest and answer["bytes"] == len(payload), answer
        saved = uploads / str(EDGE_ID) / "device.log"
        assert saved.read_bytes() == payload
        worker.expect(f"upload from edge {EDGE_ID}: device.log ({len(payload)} bytes, sha256 {digest})", 5)

        # the views, in Django's threaded development server
        port = free_port()
        web = WebServer(["manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=PROJECT, env=env,
                        port=port, log=tmp_path / "runserver.log")
        listed = http("GET", f"{web.url}/edges").json()
        assert [(e["edge_id"], e["meta"]) for e in listed["edges"]] == [(EDGE_ID, "pump-3")], listed
        assert http("GET", f"{web.url}/edges?meta=nobody").json() == {"edges": [], "count": 0}

        answers = concurrently(20, lambda i: http("POST", f"{web.url}/edges/{EDGE_ID}/call/echo", b"view-%d" % i))
        assert [(a.status, a.body) for a in answers] == [(200, b"view-%d" % i) for i in range(20)]
        status = http("POST", f"{web.url}/edges/{EDGE_ID}/call/status", b"")
        assert status.status == 200 and json.loads(status.body)["meta"] == "pump-3"

        answer = http("POST", f"{web.url}/edges/{EDGE_ID}/publish?topic=command", b"open valve 2")
        assert answer.status == 204, answer
        device.expect("message topic='command' data=open valve 2", 5)

        missing = http("POST", f"{web.url}/edges/999/call/echo", b"")
        assert missing.status == 404 and missing.json()["error"] == "EdgeNotOnline", missing
        assert http("GET", f"{web.url}/edges/{EDGE_ID}/publish").status == 405

        # the offline hook, and a clean stop on SIGTERM
        assert device.terminate() == 0
        worker.expect(f"edge {EDGE_ID} offline", 5)
        wait_until(lambda: http("GET", f"{web.url}/edges").json()["edges"] == [], 5, what="the edge gone from the list")
        assert worker.terminate() == 0
        worker.expect("frontier service stopped", 5)
    finally:
        if web is not None:
            web.stop()
        for proc in reversed(procs):
            proc.terminate()


def test_management_command_reports_an_unreachable_gateway(tmp_path):
    env = {"FRONTIER_SERVICE_ADDR": f"127.0.0.1:{free_port()}", "FRONTIER_TIMEOUT": "2",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{PROJECT}"}
    proc = ChildProcess([str(PROJECT / "manage.py"), "frontier_service"], env=env)
    assert proc.proc.wait(15) == 1
    wait_until(lambda: "cannot connect to the gateway" in proc.stderr, 5, what=f"an error on stderr: {proc.stderr!r}")
