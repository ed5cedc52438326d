"""The from-zero example of docs/ingress.md runs as written: the example config (with
free ports), ``device.py`` as its own process, a client through the ingress."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests
import yaml

from tests.gateway import ROOT, GatewayProcess, free_port

EXAMPLE = ROOT / "sdk" / "examples" / "ingress_flask"


def test_flask_device_example(tmp_path) -> None:
    config = yaml.safe_load((EXAMPLE / "ingress.yaml").read_text())
    http_port = free_port()
    config["ingress"]["http"]["listen"]["addr"] = f"127.0.0.1:{http_port}"
    gw = GatewayProcess(tmp_path, config).start()
    device = subprocess.Popen([sys.executable, str(EXAMPLE / "device.py"), "--gateway", gw.edge_addr, "--edge-id", "42",
                               "--port", str(free_port())], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "edge 42 online" in device.stdout.readline()
        url = f"http://127.0.0.1:{http_port}"
        r = requests.get(url + "/", headers={"Host": "42.edges.localhost:30080"}, timeout=10)
        assert r.status_code == 200 and "Hello from the device" in r.text
        assert requests.get(url + "/api/status", headers={"Host": "42.edges.localhost"}, timeout=10).json() == {
            "ok": True, "host": "42.edges.localhost"}
        r = requests.get(url + "/", headers={"Host": "43.edges.localhost"}, timeout=10)
        assert r.headers["X-Frontier-Error"] == "EDGE_NOT_ONLINE"
    finally:
        device.terminate()
        device.wait(10)
        gw.stop()
