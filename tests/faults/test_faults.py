"""``make test``'s short version of ``make faults``: every scenario kind once, with short
fault windows, on one namespaced cluster (about 1.5 minutes); each scenario's
checker row must show no broken promise. Skipped only on a machine that cannot
create network namespaces (no CAP_NET_ADMIN), which ``make faults`` reports too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.faults import checker, netns, scenarios

pytestmark = pytest.mark.timeout(420)
#: one scenario of each kind
SHORT = [s for s in scenarios.SCENARIOS if not s.full_only]


def _ensure_tools() -> None:
    """Install redis-sentinel and nftables when missing (we are root if namespaces work)."""
    if not netns.missing_tools():
        return
    script = Path(__file__).resolve().parents[2] / "scripts" / "ensure-services.sh"
    subprocess.run([str(script), "fault-tools"], check=False, timeout=600)
    missing = netns.missing_tools()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install -y redis-sentinel nftables")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> dict[str, checker.Result]:
    try:
        netns.check_net_admin()
    except netns.NoNetAdmin as exc:
        pytest.skip(f"no network namespaces on this machine: {exc}")
    _ensure_tools()
    netns.sweep_stale()
    workdir = tmp_path_factory.mktemp("faults")
    done = scenarios.run(workdir, SHORT, short=True)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the table is the point of the run: show it
        print(f"\nfault scenarios (short windows; histories in {workdir}):\n{checker.table(done)}", flush=True)
    return {r.scenario: r for r in done}


@pytest.mark.parametrize("name", [s.name for s in SHORT])
def test_the_cluster_keeps_its_promises(results: dict[str, checker.Result], name: str) -> None:
    result = results[name]
    assert result.operations > 100, f"the load barely ran: {result.operations} operations"
    assert not result.violations, "\n".join(result.violations[:20])
