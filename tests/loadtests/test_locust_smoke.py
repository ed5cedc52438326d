"""Smoke test of the Locust edge swarm: every scenario, a few seconds, a real gateway.

Locust monkey-patches whatever process imports it, so it always runs in a
subprocess of its own; this process stays unpatched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.gateway import ROOT, GatewayProcess

LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"

#: scenario tag -> (request type, name) pairs it must report
SCENARIOS = {
    "connect_storm": [("connect", "edge handshake + online hook")],
    "rpc_e2s": [("rpc", "edge->service echo")],
    "rpc_s2e": [("rpc", "service->edge ping")],
    "publish": [("publish", "edge->service telemetry"), ("publish", "service->edge push")],
    "stream": [("stream", "edge->service echo 64 KB")],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with GatewayProcess(tmp_path_factory.mktemp("locust-gw")) as gw:
        yield gw


def run_locust(gateway: GatewayProcess, *extra: str, seconds: int = 3) -> list[dict]:
    """Run the swarm headless; return Locust's --json stats (asserting a clean exit)."""
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "5", "-r", "5",
        "-t", f"{seconds}s", "--stop-timeout", "5", "--only-summary", "--json", "--skip-log",
        "--frontier-edge", gateway.edge_addr, "--frontier-service", gateway.service_addr,
        "--frontier-stream-bytes", "65536", *extra,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"locust exited {proc.returncode}\n{proc.stderr[-3000:]}\n{gateway.log()[-2000:]}"
    return json.loads(proc.stdout)


def check(stats: list[dict], expected: list[tuple[str, str]]) -> None:
    seen = {(s["method"], s["name"]): s for s in stats}
    for entry in stats:
        assert entry["num_failures"] == 0, f"{entry['method']} {entry['name']}: {entry['num_failures']} failures"
    for key in expected:
        assert key in seen, f"no {key} reported; got {sorted(seen)}"
        assert seen[key]["num_requests"] > 0


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_runs_clean(gateway: GatewayProcess, scenario: str) -> None:
    check(run_locust(gateway, "--tags", scenario), SCENARIOS[scenario])


def test_mixed_swarm_runs_every_task(gateway: GatewayProcess) -> None:
    check(run_locust(gateway), [key for keys in SCENARIOS.values() for key in keys])
