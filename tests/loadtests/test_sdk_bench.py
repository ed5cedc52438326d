"""The SDK benchmark (``loadtests/sdk_bench.py``) at tiny sizes: it runs against a real
gateway, produces bench-shaped rows (SDK in the ``gateway`` column, the bare gevent
floor in the ``relay`` one), and its Locust harness drives a gateway with no failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.gateway import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_bench_only_sdk_writes_sdk_rows(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "loadtests.bench", "--tiny", "--only", "sdk", "--out", str(tmp_path)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads((tmp_path / "latest.json").read_text())["rows"]}
    for name in ("sdk call 1 edge (vs floor)", "sdk call 100 edges (vs floor)",
                 "sdk call_async 1 edge (vs floor)", "sdk call_async 100 edges (vs floor)"):
        row = rows[name]
        assert row["unit"] == "client us/call"
        assert row["gateway"] > 0 and row["relay"] > 0
        assert row["ratio"] == pytest.approx(row["gateway"] / row["relay"], rel=0.03)
        assert row["failures"] == {"gateway": 0, "relay": 0}, row
        assert row["calls_per_s"]["gateway"] > 0 and row["calls_per_s"]["relay"] > 0


def test_locust_harness_drives_the_gateway(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "loadtests.sdk_bench", "--locust", "20", "--spawn-rate", "20", "--window", "2"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert out["users"] == 20 and out["failures"] == 0, out
    assert out["calls_per_s"] > 0 and out["requests"]["rpc edge->service echo"] > 0
    assert out["requests"]["connect edge handshake + online hook"] == 20
    assert set(out["cpu_percent"]) == {"locust", "gateway", "service"}
