"""Apps through the control plane: REST, gRPC and the CLI, applied without restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import requests

from frontier.control.proto import controlplane_pb2 as pb
from frontier.control.proto import controlplane_pb2_grpc as pb_grpc
from tests.gateway import ROOT


def _app(webapp, app_id: str = "plain", host: str = "plain.test") -> dict:
    return {"id": app_id, "frontends": [{"kind": "hostname", "hostname": host, "path_prefix": "/"}],
            "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}}


def test_rest_put_get_list_delete(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": []}, control=True)
    api = f"http://{gw.control_addr}/v1/apps"
    host = {"Host": "plain.test"}
    assert requests.get(gw.url("/hello"), headers=host, timeout=10).status_code == 404
    r = requests.put(f"{api}/plain", json=_app(webapp), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["backend"] == {"kind": "peer_set", "peer_set_opts": {"addrs": [f"http://{webapp.addr}"]}}
    assert requests.get(gw.url("/hello"), headers=host, timeout=10).text == "hello from edge-app"
    assert requests.get(api, timeout=10).json()["count"] == 1
    assert requests.get(f"{api}/plain", timeout=10).json()["id"] == "plain"
    bad = _app(webapp)
    bad["backend"]["peer_set_opts"]["addrs"] = ["https://nope"]
    r = requests.put(f"{api}/plain", json=bad, timeout=10)
    assert r.status_code == 400 and r.json()["message"].startswith("backend.peer_set_opts.addrs[0]:"), r.text
    r = requests.put(f"{api}/other", json=_app(webapp), timeout=10)
    assert r.status_code == 400 and r.json()["message"].startswith("id:"), r.text
    assert requests.delete(f"{api}/plain", timeout=10).status_code == 200
    assert requests.get(f"{api}/plain", timeout=10).status_code == 404
    assert requests.delete(f"{api}/plain", timeout=10).status_code == 404
    r = requests.get(gw.url("/hello"), headers=host, timeout=10)
    assert (r.status_code, r.headers["X-Frontier-Error"]) == (404, "NO_APP")
    text = requests.get(f"http://{gw.control_addr}/metrics", timeout=10).text
    assert 'frontier_ingress_requests_total{app="plain",code="200"} 1.0' in text
    assert 'frontier_ingress_requests_total{app="-",code="404"} 2.0' in text
    assert 'frontier_ingress_request_duration_seconds_count{app="plain"} 1.0' in text
    assert 'frontier_ingress_bytes_total{app="plain",direction="out"} 19.0' in text
    assert "frontier_ingress_websockets_open" in text and "frontier_ingress_connections " in text


def test_grpc_apps(ingress_gateway, webapp) -> None:
    gw = ingress_gateway({"apps": []}, control=True)
    with grpc.insecure_channel(gw.control_addr) as channel:
        stub = pb_grpc.ControlPlaneStub(channel)
        app = pb.App(id="g", frontends=[pb.AppFrontend(kind="hostname", hostname="g.test", path_prefix="/")],
                     backend=pb.AppBackend(kind="peer_set", peer_set_opts=pb.PeerSetOpts(addrs=[f"http://{webapp.addr}"])))
        assert stub.PutApp(app, timeout=10).id == "g"
        assert [a.id for a in stub.ListApps(pb.ListAppsRequest(), timeout=10).apps] == ["g"]
        assert requests.get(gw.url("/hello"), headers={"Host": "g.test"}, timeout=10).status_code == 200
        edge_app = pb.App(id="e", frontends=[pb.AppFrontend(hostname="e.test")],
                          backend=pb.AppBackend(kind="edge_http", edge_http_opts=pb.EdgeHttpOpts(edge_id=2**40, target="ui")))
        assert stub.PutApp(edge_app, timeout=10).backend.edge_http_opts.edge_id == 2**40
        try:
            stub.PutApp(pb.App(id="bad", frontends=[pb.AppFrontend(hostname="*.*.x")]), timeout=10)
            raise AssertionError("accepted a bad app")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert exc.details().startswith("frontends[0].hostname:")
        stub.DeleteApp(pb.DeleteAppRequest(id="g"), timeout=10)
        try:
            stub.GetApp(pb.GetAppRequest(id="g"), timeout=10)
            raise AssertionError("deleted app still there")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "frontier.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


def test_cli_apps(ingress_gateway, webapp, tmp_path: Path) -> None:
    gw = ingress_gateway({"apps": []}, control=True)
    path = tmp_path / "app.json"
    path.write_text(json.dumps(_app(webapp, "from-cli", "cli.test")))
    r = _cli("apps", "put", str(path), "--addr", gw.control_addr)
    assert r.returncode == 0 and "put app from-cli" in r.stdout, r.stderr
    r = _cli("apps", "list", "--addr", gw.control_addr)
    assert r.returncode == 0 and "from-cli" in r.stdout and "cli.test/" in r.stdout, r.stdout
    assert requests.get(gw.url("/hello"), headers={"Host": "cli.test"}, timeout=10).status_code == 200
    path.write_text("id: broken\nfrontends: [{hostname: 'x.test'}]\nbackend: {kind: teleport}\n")
    r = _cli("apps", "put", str(path), "--addr", gw.control_addr)
    assert r.returncode == 1 and "backend.kind" in r.stderr, r.stderr
    r = _cli("apps", "delete", "from-cli", "--addr", gw.control_addr)
    assert r.returncode == 0, r.stderr
    assert _cli("apps", "delete", "from-cli", "--addr", gw.control_addr).returncode == 1
