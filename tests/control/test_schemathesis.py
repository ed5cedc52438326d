"""schemathesis (``--checks all``) against a real control plane, with authentication
off and on: the OpenAPI document and the server agree on every path, parameter range,
allowed value, status code and on when a token is needed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.control.conftest import ROOT, start_driver

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize(("backend", "token"), [("sqlite3", ""), ("buntdb", "s3cret")], ids=["auth-off", "auth-on"])
def test_schemathesis_checks_all_pass(tmp_path, backend, token):
    running = start_driver(tmp_path, backend=backend, tokens=token)
    try:
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{running.port}/openapi.json",
               "--checks", "all", "--max-examples", "5", "--no-color"]
        if token:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        # in tmp_path: schemathesis keeps a cache directory (.schemathesis) where it runs
        out = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                             text=True, timeout=170)
    finally:
        running.stop()
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated and int(generated.group(2)) > 500, report  # it really exercised the API
    total = re.search(r"Operations:\s+(\d+) selected / (\d+) total", report)
    assert total and f"Tested: {total.group(2)}" in report, report  # every operation of the document


def test_paging_is_refused_outside_the_documented_ranges(shared_cp):
    for query, message in [
        ("page=0", "page: 0 is out of range [1, 9223372036854776]; pages count from 1"),
        ("page_size=0", "page_size: 0 is out of range [1, 1000]"),
        ("page_size=", "page_size: empty; give a value or leave the parameter out"),
        ("start_time=", "start_time: empty"),
        ("order=", "order: expected one of create_time, edge_id, meta, addr"),
        ("page=9223372036854777", "page: 9223372036854777 is out of range"),
    ]:
        resp = shared_cp.get(f"/v1/edges?{query}")
        assert resp.status_code == 400 and resp.json()["message"].startswith(message), (query, resp.text)
    # empty text filters are no filter; a time range that holds nothing holds nothing
    assert shared_cp.get("/v1/edges?meta=&page_size=1").json()["count"] == 12
    assert shared_cp.get("/v1/edges?start_time=20&end_time=10").json() == {"edges": [], "count": 0}


def test_the_document_asks_for_a_token_only_when_auth_is_on(shared_cp, start):
    off = shared_cp.get("/openapi.json").json()
    assert "security" not in off and "securitySchemes" not in off["components"]
    assert all("401" not in op["responses"] for item in off["paths"].values() for op in item.values()
               if isinstance(op, dict) and "responses" in op)
    on = start(tokens="s3cret")
    doc = on.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
    assert doc["security"] == [{"bearerAuth": []}] and "bearerAuth" in doc["components"]["securitySchemes"]
    assert "401" in doc["paths"]["/v1/edges"]["get"]["responses"]
    page = doc["paths"]["/v1/edges"]["get"]["parameters"]
    assert {p["name"]: (p["schema"].get("minimum"), p["schema"].get("maximum")) for p in page
            if p["name"] in ("page", "page_size")} == {"page": (1, 9223372036854776), "page_size": (1, 1000)}


def test_list_routes_do_not_advertise_the_item_routes_methods(shared_cp):
    for path in ("/v1/edges/rpcs", "/v1/services/rpcs", "/v1/services/topics"):
        resp = shared_cp.session.options(shared_cp.url + path, timeout=10)
        assert sorted(resp.headers["Allow"].split(", ")) == ["GET", "HEAD", "OPTIONS"], (path, resp.headers["Allow"])
