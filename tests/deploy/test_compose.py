"""dist/compose/docker-compose.yml: valid against the Compose Specification's schema
(check-jsonschema's bundled copy, offline), consistent with the Dockerfiles and the
mounted configs, and those configs run as a working frontier + Frontlas pair."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from frontier.config import load_config as load_frontier_config
from frontier.sdk import Edge
from frontier.sdk.cluster import ClusterService
from frontlas.config import load_config as load_frontlas_config
from tests.deploy.conftest import DOCKERFILES, instructions, only, run_cluster
from tests.e2e.proc_tools import ROOT

COMPOSE_DIR = ROOT / "dist" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_compose_file_matches_the_compose_spec(tmp_path):
    out = schema_check(COMPOSE)
    assert out.returncode == 0, out.stdout + out.stderr
    # the check is real: a broken copy fails it
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["frontier"]["ports"] = {"control": 30010}
    doc["services"]["frontier"]["stop_grace_period"] = ["30s"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc))
    out = schema_check(broken)
    assert out.returncode == 1 and "ports" in out.stdout, out.stdout


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def test_compose_services_fit_the_images_and_configs():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert set(services) == {"frontier", "frontlas", "redis"}
    for name in ("frontier", "frontlas"):
        svc = services[name]
        build = svc["build"]
        assert (COMPOSE_DIR / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILES[name].resolve()
        # the config is mounted where the image's CMD reads it, from a file that exists
        config_path = only(instructions(DOCKERFILES[name]), "CMD").value[-1]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert config_path in mounts, svc["volumes"]
        assert (COMPOSE_DIR / mounts[config_path]).is_file()
        for dep in svc.get("depends_on", {}):
            assert dep in services
        assert "healthcheck" in svc
    # compose refuses to start without a control-plane token (${VAR:?message})
    environment = services["frontier"]["environment"]
    assert environment["FRONTIER_CONTROLPLANE_TOKEN"].startswith("${FRONTIER_CONTROLPLANE_TOKEN:?")
    frontier_conf = load_frontier_config(str(COMPOSE_DIR / "conf" / "frontier.yaml"),
                                         env={**environment, "FRONTIER_CONTROLPLANE_TOKEN": "t0ken"})
    frontlas_conf = load_frontlas_config(str(COMPOSE_DIR / "conf" / "frontlas.yaml"), env={})
    # published ports are the ones the configs listen on; the healthcheck probes the control plane
    listen = {int(a.rsplit(":", 1)[1]) for a in (frontier_conf.controlplane.listen.addr, frontier_conf.servicebound.listen.addr,
                                                  frontier_conf.edgebound.listen.addr)}
    published = {int(p.split(":")[1]) for p in services["frontier"]["ports"]}
    assert published == listen
    assert frontier_conf.controlplane.enable
    control_port = frontier_conf.controlplane.listen.addr.rsplit(":", 1)[1]
    assert f"127.0.0.1:{control_port}/readyz" in services["frontier"]["healthcheck"]["test"][-1]
    assert f"127.0.0.1:{frontlas_conf.control_plane.listen.addr.rsplit(':', 1)[1]}/readyz" in services["frontlas"]["healthcheck"]["test"][-1]
    # the frontier finds Frontlas and Frontlas finds Redis by their compose service names
    assert frontier_conf.frontlas.enable
    plane_port = frontlas_conf.frontier_plane.listen.addr.rsplit(":", 1)[1]
    assert list(frontier_conf.frontlas.dial.addrs) == [f"frontlas:{plane_port}"]
    assert frontlas_conf.redis.standalone.addr == "redis:6379"
    # docker compose stop waits longer than the drain
    assert _seconds(services["frontier"]["stop_grace_period"]) > frontier_conf.limits.drain_timeout


def test_compose_configs_run_a_working_cluster(installed, tmp_path):
    frontier_yaml = (COMPOSE_DIR / "conf" / "frontier.yaml").read_text()
    frontlas_yaml = (COMPOSE_DIR / "conf" / "frontlas.yaml").read_text()
    with run_cluster(installed, tmp_path, frontier_yaml, frontlas_yaml) as cluster:
        assert cluster.frontier_id == "frontier01"
        # a ClusterService finds the frontier through Frontlas and reaches an edge on it
        with Edge(cluster.edge, timeout=5) as dev, ClusterService(cluster.api, name="compose-check", timeout=5) as svc:
            dev.register("echo", lambda req: req.data)
            assert svc.call(dev.edge_id, "echo", b"through frontlas") == b"through frontlas"
