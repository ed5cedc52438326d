"""The Dockerfiles: parsed by BuildKit's parser and checked (slim base, non-root user,
exec-form entry point, config at /usr/conf, ports of the default config, build
context), then their build stage and entry point replayed outside Docker (see
conftest.py for what that does and does not cover)."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from frontier.config import load_config as load_frontier_config
from frontier.sdk import Edge, Service
from frontlas.config import load_config as load_frontlas_config
from tests.deploy.conftest import (
    DOCKERFILES, INSTALL_STEP, Installed, Running, _clean_env, entrypoint_argv, in_build_context, instructions, only,
)
from tests.e2e.proc_tools import ROOT
from tests.gateway import free_port

#: what each image runs, listens on and reads
EXPECTED = {
    "frontier": {"entry": ["frontier-gevent"], "cmd": ["serve", "--config", "/usr/conf/frontier.yaml"],
                 "conf": "dist/conf/frontier.yaml", "probe_port": 9091},
    "frontlas": {"entry": ["frontlas-gevent"], "cmd": ["serve", "--config", "/usr/conf/frontlas.yaml"],
                 "conf": "dist/conf/frontlas.yaml", "probe_port": 40011},
}


def _ports_of(name: str) -> set[int]:
    path = str(ROOT / EXPECTED[name]["conf"])
    if name == "frontier":
        c = load_frontier_config(path, env={})
        addrs = [c.servicebound.listen.addr, c.edgebound.listen.addr, c.controlplane.listen.addr, c.observability.addr]
        assert c.controlplane.enable and c.observability.enable, "the image's default config must serve the probes"
    else:
        c = load_frontlas_config(path, env={})
        addrs = [c.control_plane.listen.addr, c.frontier_plane.listen.addr, c.observability.addr]
    return {int(a.rsplit(":", 1)[1]) for a in addrs}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_follows_the_rules(name):
    cmds = instructions(DOCKERFILES[name])
    expected = EXPECTED[name]
    args = {c.value[0].split("=", 1)[0]: c.value[0].split("=", 1)[1] for c in cmds if c.cmd == "ARG" and "=" in c.value[0]}
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], only(cmds, "FROM").value[0])
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    assert not [c for c in cmds if c.cmd == "ADD"], "COPY, not ADD"

    # a fixed, non-root user that the image creates
    user = only(cmds, "USER").value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, user
    adduser = " ".join(c.value[0] for c in cmds if c.cmd == "RUN")
    assert f"--uid {uid}" in adduser and f"--gid {gid}" in adduser
    assert cmds.index(only(cmds, "USER")) > max(i for i, c in enumerate(cmds) if c.cmd == "RUN"), "nothing runs as root after USER"

    # exec-form entry point (the process is PID 1 and gets SIGTERM), config at /usr/conf
    entry, cmd = only(cmds, "ENTRYPOINT"), only(cmds, "CMD")
    assert entry.json and list(entry.value) == expected["entry"]
    assert cmd.json and list(cmd.value) == expected["cmd"]
    copies = [c.value for c in cmds if c.cmd == "COPY"]
    assert (expected["conf"], f"/usr/conf/{name}.yaml") in copies
    assert only(cmds, "STOPSIGNAL").value == ("SIGTERM",)

    # the ports the default config listens on, and a health check on its probe port
    assert {int(p) for p in only(cmds, "EXPOSE").value} == _ports_of(name)
    health = only(cmds, "HEALTHCHECK")
    assert health.json and health.value[0] == "CMD" and f"127.0.0.1:{expected['probe_port']}/healthz" in health.value[-1]

    # the same build stage in both images (one package holds frontier and frontlas)
    assert [c.value[0] for c in cmds if c.cmd == "RUN"][0] == INSTALL_STEP

    # every COPY source exists and is in the build context (.dockerignore)
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert in_build_context(source), f"{source} is excluded by .dockerignore"


def test_dockerignore_keeps_the_context_small():
    for path in ("frontier/server.py", "frontlas/cli.py", "setup.cfg", "pyproject.toml", "README.md", "dist/conf/frontier.yaml"):
        assert in_build_context(path), path
    for path in (".venv/bin/python", ".git/HEAD", "tests/gateway.py", "frontier/__pycache__/cli.cpython-311.pyc",
                 "loadtests/bench.py", "dist/k8s/frontier.yaml", "frontier_gevent.egg-info/PKG-INFO", "docs/deploy.md"):
        assert not in_build_context(path), path


def test_the_build_stage_installs_the_package_with_both_commands(installed: Installed, tmp_path):
    for script in ("frontier-gevent", "frontlas-gevent"):
        assert (installed.venv / "bin" / script).exists(), script
    where = subprocess.run([installed.bin("python"), "-c", "import frontier, frontlas; print(frontier.__file__); print(frontlas.__file__)"],
                           cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=True).stdout.split()
    assert all(p.startswith(str(installed.venv)) for p in where), where  # the installed copy, not the work tree
    # the package data the servers need at run time came along (protos, OpenAPI)
    assert list(installed.venv.rglob("frontier/control/proto/*.proto")), "the control plane protos were not installed"


def _image_config(tmp_path, name: str):
    """The image's /usr/conf/<name>.yaml (the COPY'd default), under tmp_path."""
    conf = tmp_path / "usr" / "conf" / f"{name}.yaml"
    conf.parent.mkdir(parents=True)
    conf.write_text((ROOT / EXPECTED[name]["conf"]).read_text())
    return conf


def test_frontier_entrypoint_serves_probes_and_drains_on_sigterm(installed: Installed, tmp_path):
    conf = _image_config(tmp_path, "frontier")
    control, service, edge, probes = free_port(), free_port(), free_port(), free_port()
    env = {"FRONTIER__CONTROLPLANE__LISTEN__ADDR": f"127.0.0.1:{control}",   # free ports instead of 30010-30012, 9091
           "FRONTIER__SERVICEBOUND__LISTEN__ADDR": f"127.0.0.1:{service}",
           "FRONTIER__EDGEBOUND__LISTEN__ADDR": f"127.0.0.1:{edge}",
           "FRONTIER__OBSERVABILITY__ADDR": f"127.0.0.1:{probes}"}
    proc = Running(entrypoint_argv("frontier", installed, conf), env=env, cwd=tmp_path, log=tmp_path / "frontier.log")
    try:
        assert proc.wait_http(f"http://127.0.0.1:{control}/healthz") == {"status": "ok"}
        assert proc.wait_http(f"http://127.0.0.1:{control}/readyz") == {"status": "ready"}
        assert proc.wait_http(f"http://127.0.0.1:{probes}/readyz") == {"status": "ready"}
        # the image's HEALTHCHECK command, run by the image's python
        health = only(instructions(DOCKERFILES["frontier"]), "HEALTHCHECK").value[1:]
        check = [installed.bin(health[0]), *[a.replace(":9091/", f":{probes}/") for a in health[1:]]]
        assert subprocess.run(check, env=_clean_env(), timeout=10).returncode == 0
        # it is a working gateway
        with Service(f"127.0.0.1:{service}", name="image-check", timeout=5) as svc, \
                Edge(f"127.0.0.1:{edge}", timeout=5) as dev:
            dev.register("echo", lambda req: req.data)
            assert svc.call(dev.edge_id, "echo", b"from the image") == b"from the image"
            code = proc.stop()  # SIGTERM with clients connected: GoAway, drain, exit
    finally:
        code = proc.stop()
    assert code == 0, proc.log()
    assert "draining" in proc.log()


def test_frontlas_entrypoint_serves_probes_with_redis(installed: Installed, tmp_path):
    conf = _image_config(tmp_path, "frontlas")
    api, plane, probes = free_port(), free_port(), free_port()
    env = {"FRONTLAS__CONTROL_PLANE__LISTEN__ADDR": f"127.0.0.1:{api}",
           "FRONTLAS__OBSERVABILITY__ADDR": f"127.0.0.1:{probes}",
           "FRONTLAS__FRONTIER_PLANE__LISTEN__ADDR": f"127.0.0.1:{plane}",
           "FRONTLAS__REDIS__STANDALONE__ADDR": "127.0.0.1:6379",   # "redis:6379" in compose / Kubernetes
           "FRONTLAS__REDIS__KEY_PREFIX": f"'deploytest-{uuid.uuid4().hex[:8]}:'"}  # YAML: quoted
    proc = Running(entrypoint_argv("frontlas", installed, conf), env=env, cwd=tmp_path, log=tmp_path / "frontlas.log")
    try:
        assert proc.wait_http(f"http://127.0.0.1:{api}/healthz") == {"status": "ok"}
        assert proc.wait_http(f"http://127.0.0.1:{api}/readyz") == {"status": "ready"}
        assert proc.wait_http(f"http://127.0.0.1:{api}/cluster/v1/frontiers")["frontiers"] == []
        assert proc.wait_http(f"http://127.0.0.1:{probes}/readyz") == {"status": "ready"}
    finally:
        code = proc.stop()
    assert code == 0, proc.log()
