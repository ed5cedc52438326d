"""``make bench`` end to end in its tiny mode: gateway, relay, generators, JSON, chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.gateway import ROOT


def test_tiny_bench_writes_results(tmp_path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--tiny", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "latest.json").read_text())
    assert doc["cpus"] == os.cpu_count()
    assert doc["date"] and doc["runs"] >= 1
    names = {row["name"] for row in doc["rows"]}
    for name in ("rpc e2s 1 conn", "rpc e2s 1 conn p99", "rpc s2e 20 edges", "publish e2s 20 edges",
                 "stream 1", "stream 8", "connect", "idle rss/edge @200",
                 "2 workers: rpc e2s 20 edges", "2 workers: rpc e2s 20 edges least-loaded worker",
                 "2 workers: rpc s2e 20 edges", "crossing: s2e call, worker known"):
        assert name in names, f"{name!r} missing from {sorted(names)}"
    for row in doc["rows"]:
        assert set(row) >= {"name", "unit", "gateway", "relay", "ratio", "runs"}
        assert row["runs"] >= 1
        assert row["gateway"] is not None and row["gateway"] > 0, row
        if row["relay"] is not None:
            assert row["ratio"] == pytest.approx(row["gateway"] / row["relay"], rel=0.03)
        if "failures" in row:
            assert row["failures"] == {"gateway": 0, "relay": 0}, row
    assert "| figure" in proc.stdout  # the table was printed
    assert not (ROOT / "loadtests" / "results" / "latest.json").exists() or \
        json.loads((ROOT / "loadtests" / "results" / "latest.json").read_text())["mode"] != "tiny"
    assert (out / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # matplotlib is in the test extra
