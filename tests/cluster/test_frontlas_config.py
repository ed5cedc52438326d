"""Frontlas reads Go's ``frontlas.yaml`` keys as they are; its CLI checks them; the
frontier plane refuses malformed reports with typed errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from frontier.cluster import protocol as P
from frontier.config import Config
from frontier.cluster.reporter import FrontlasReporter
from frontier.sdk import Edge, FrontierError, InvalidArgument, Refused, Service
from frontier.wire.errors import ConfigError
from frontlas.config import FrontlasConfig, load_config
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import ROOT

pytestmark = pytest.mark.timeout(60)

GO_MINIMAL = """
daemon:
  rlimit: {enable: false, nofile: 1024}
  pprof: {enable: true, addr: 0.0.0.0:6061, cpu_profile_rate: 0}
control_plane:
  listen: {network: tcp, addr: 0.0.0.0:40011}
frontier_plane:
  listen: {network: tcp, addr: 0.0.0.0:40012}
  expiration: {service_meta: 30, edge_meta: 30}
redis:
  mode: standalone
  standalone: {network: tcp, addr: 127.0.0.1:6379, db: 0}
"""


def test_go_frontlas_yaml_loads() -> None:
    warnings: list[str] = []
    config = FrontlasConfig.from_dict(yaml.safe_load(GO_MINIMAL), warn=warnings.append)
    assert config.control_plane.listen.addr == "0.0.0.0:40011"
    assert config.frontier_plane.listen.addr == "0.0.0.0:40012"
    assert (config.frontier_plane.expiration.service_meta, config.frontier_plane.expiration.edge_meta) == (30, 30)
    assert config.redis.mode == "standalone" and config.redis.standalone.addr == "127.0.0.1:6379"
    assert warnings == ["daemon.pprof.enable: Go's pprof profiler is not implemented in frontlas-gevent, ignored"]
    assert config.heartbeat == 10.0


def test_readme_style_top_level_expiration_and_go_all_yaml_section() -> None:
    config = FrontlasConfig.from_dict({"expiration": {"service_meta": 9, "edge_meta": 12}})
    assert (config.frontier_plane.expiration.service_meta, config.frontier_plane.expiration.edge_meta) == (9, 12)
    config = FrontlasConfig.from_dict({"frontier_manager": {"listen": {"addr": "1.2.3.4:5"}, "expiration": {"edge_meta": 0}}})
    assert config.frontier_plane.listen.addr == "1.2.3.4:5"
    assert config.frontier_plane.expiration.edge_meta == 30  # 0 means the default, as in Go


def test_sentinel_and_cluster_blocks() -> None:
    config = FrontlasConfig.from_dict({"redis": {"mode": "sentinel", "sentinel": {"addrs": ["10.0.0.1:26379"], "master_name": "m"},
                                                 "password": "pw"}})
    assert config.redis.sentinel.master_name == "m"
    with pytest.raises(ConfigError, match="redis.sentinel"):
        FrontlasConfig.from_dict({"redis": {"mode": "sentinel"}})
    with pytest.raises(ConfigError, match="redis.cluster.addrs"):
        FrontlasConfig.from_dict({"redis": {"mode": "cluster"}})
    with pytest.raises(ConfigError, match="redis.mode"):
        FrontlasConfig.from_dict({"redis": {"mode": "ring"}})
    with pytest.raises(ConfigError, match="key_prefix"):
        FrontlasConfig.from_dict({"redis": {"key_prefix": "a{b}"}})


def test_environment_overrides() -> None:
    config = load_config(None, {"FRONTLAS__REDIS__MODE": "cluster", "FRONTLAS__REDIS__CLUSTER__ADDRS": "[10.0.0.1:7000]",
                                "FRONTIER__REDIS__MODE": "ignored"})
    assert config.redis.mode == "cluster" and config.redis.cluster.addrs == ("10.0.0.1:7000",)


def test_go_environment_variables_keep_their_go_meaning() -> None:
    config = load_config(None, {"FRONTLAS_CONTROLPLANE_PORT": "41011", "FRONTLAS_FRONTIERPLANE_PORT": "41012",
                                "REDIS_TYPE": "sentinel", "REDIS_ADDRS": "10.0.0.1:26379,10.0.0.2:26379",
                                "MASTER_NAME": "mymaster", "REDIS_USER": "u", "REDIS_PASSWORD": "pw", "LOG_LEVEL": "warn"})
    assert config.control_plane.listen.addr == "0.0.0.0:41011"
    assert config.frontier_plane.listen.addr == "0.0.0.0:41012"
    assert config.redis.mode == "sentinel"
    assert config.redis.sentinel.addrs == ("10.0.0.1:26379", "10.0.0.2:26379")
    assert (config.redis.sentinel.master_name, config.redis.username, config.redis.password) == ("mymaster", "u", "pw")
    assert config.log.level == "warn"
    config = load_config(None, {"REDIS_TYPE": "standalone", "REDIS_ADDRS": "redis:6380", "REDIS_DB": "3",
                                "FRONTLAS__REDIS__STANDALONE__DB": "4"})
    assert (config.redis.standalone.addr, config.redis.standalone.db) == ("redis:6380", 4)  # ours beats Go's
    config = load_config(None, {"REDIS_TYPE": "cluster", "REDIS_ADDRS": "a:7000,b:7001"})
    assert config.redis.cluster.addrs == ("a:7000", "b:7001")
    with pytest.raises(ConfigError, match="^REDIS_DB: expected a database number, got 'x'$"):
        load_config(None, {"REDIS_TYPE": "standalone", "REDIS_DB": "x"})
    warnings: list[str] = []
    config = load_config(None, {"REDIS_ADDRS": "redis:6380"}, warn=warnings.append)  # Go ignores it without REDIS_TYPE
    assert config.redis.standalone.addr == "127.0.0.1:6379"
    assert warnings == ["REDIS_ADDRS: ignored without REDIS_TYPE (as in Go); set REDIS_TYPE=standalone, sentinel or cluster"]


def test_go_generated_keys_warn_and_typos_are_refused() -> None:
    warnings: list[str] = []
    FrontlasConfig.from_dict({"redis": {"client_name": "x", "max_idle_conns": 3}}, warn=warnings.append)
    assert warnings == ["redis.client_name: a Go Frontier key frontier-gevent does not implement, ignored",
                        "redis.max_idle_conns: a Go Frontier key frontier-gevent does not implement, ignored"]
    with pytest.raises(ConfigError, match=r"^redis.standalon: unknown key \(did you mean 'standalone'\?\)$"):
        FrontlasConfig.from_dict({"redis": {"standalon": {}}})
    with pytest.raises(ConfigError, match=r"^FRONTLAS__REDIS__MODEE: unknown key redis.modee \(did you mean FRONTLAS__REDIS__MODE\?\)$"):
        load_config(None, {"FRONTLAS__REDIS__MODEE": "cluster"})


def test_cli_config_check(tmp_path: Path) -> None:
    path = tmp_path / "frontlas.yaml"
    path.write_text(GO_MINIMAL)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run([sys.executable, "-m", "frontlas.cli", "config", "check", "--config", str(path)],
                        capture_output=True, text=True, env=env, cwd=ROOT, timeout=30)
    assert ok.returncode == 0 and "frontier_plane:" in ok.stdout and "pprof" in ok.stderr
    path.write_text("redis: {mode: ring}\n")
    bad = subprocess.run([sys.executable, "-m", "frontlas.cli", "config", "check", "--config", str(path)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=30)
    assert bad.returncode == 2 and "redis.mode" in bad.stderr


def test_frontier_side_config() -> None:
    config = Config.from_dict({"frontlas": {"enable": True, "dial": {"addr": ["10.0.0.9:40012"]}}, "daemon": {"frontier_id": "edge-gw-1"}})
    reporter = FrontlasReporter.from_config(config)
    assert (reporter.addrs, reporter.frontier_id) == (["10.0.0.9:40012"], "edge-gw-1")
    with pytest.raises(ConfigError, match="daemon.frontier_id"):
        FrontlasReporter.from_config(Config.from_dict({"frontlas": {"enable": True}, "daemon": {"frontier_id": "a{b}"}}))


def test_the_frontier_plane_refuses_bad_reports(cluster: Cluster) -> None:
    fl = cluster.frontlas()
    client = cluster.client(Edge, fl.plane_addr, meta=P.pack({"frontier_id": "probe"}))
    with pytest.raises(InvalidArgument):
        client.call(P.REPORT, b"\xc1garbage")
    with pytest.raises(InvalidArgument):
        client.call(P.REPORT, P.pack({"frontier_id": "x", "session": "s", "seq": -1}))
    with pytest.raises(InvalidArgument):
        client.call(P.REGISTER, P.pack({"frontier_id": "bad{id}", "session": "s", "advertised_sb_addr": "a:1",
                                        "advertised_eb_addr": "a:2"}))
    with pytest.raises(InvalidArgument):
        client.call(P.SYNC, P.pack({"frontier_id": "x", "session": "s", "seq": 1, "edges": [["not-an-id"]]}))
    with pytest.raises(FrontierError):
        client.call("frontlas.nothing", P.pack({}))
    answer = P.unpack(client.call(P.REPORT, P.pack({"frontier_id": "x", "session": "s", "seq": 1})))
    assert answer["status"] == P.UNKNOWN
    with pytest.raises(Refused):  # services have no business on the frontier plane
        Service(fl.plane_addr, timeout=5)


def test_the_cluster_sdk_needs_no_grpc_gevent_or_requests() -> None:
    code = ("import sys; import frontier.sdk; from frontier.sdk import ClusterService, ClusterEdge; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'gevent', 'grpc', 'requests', 'redis', 'flask'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_port_in_use_is_named_with_the_key_to_change() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT), FRONTLAS__CONTROL_PLANE__LISTEN__ADDR=f"127.0.0.1:{port}",
                   FRONTLAS__FRONTIER_PLANE__LISTEN__ADDR="127.0.0.1:0")
        out = subprocess.run([sys.executable, "-m", "frontlas.cli", "serve"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=60)
    assert out.returncode == 1, out
    assert (f"cannot start frontlas-gevent: the cluster API cannot listen on 127.0.0.1:{port}: Address already in use; "
            "another program (another frontier?) holds that port: stop it, or change control_plane.listen.addr") in out.stdout
