"""Fork safety of the SDK (issue 8): a client created before a fork keeps working in
every child on a connection of the child's own, and the parent's is never touched.

Each scenario runs in ``fork_probe.py`` as its own process against a real gateway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.proc_tools import ROOT, wait_until
from tests.gateway import GatewayProcess
from tests.security.certs import PKI

PROBE = ROOT / "tests" / "examples" / "fork_probe.py"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with GatewayProcess(tmp_path_factory.mktemp("forkgw"), control=True) as gw:
        yield gw


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory):
    """A gateway whose service and edge listeners speak TLS only."""
    pki = PKI.create(tmp_path_factory.mktemp("pki"))
    tls = {"enable": True, "certs": [{"cert": str(pki.server.cert_path), "key": str(pki.server.key_path)}]}
    config = {"servicebound": {"listen": {"tls": tls}}, "edgebound": {"listen": {"tls": tls}}}
    with GatewayProcess(tmp_path_factory.mktemp("forktlsgw"), config) as gw:
        gw.ca = str(pki.ca.cert_path)
        yield gw


def probe(gw: GatewayProcess, scenario: str, timeout: float = 90) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", FORK_PROBE_TLS_CA=getattr(gw, "ca", ""))
    out = subprocess.run([sys.executable, str(PROBE), scenario, gw.service_addr, gw.edge_addr],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"probe {scenario} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def services(gw: GatewayProcess, name: str) -> list[dict]:
    url = f"http://{gw.control_addr}/v1/services?service={name}&page_size=100"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["services"]


def check_busy_fork(report: dict) -> None:
    parent, children = report["parent"], report["children"]
    assert all(code == 0 for code in report["status"].values()), report
    assert len(children) == 3
    for child in children:
        assert child["ok"] == 100 and child["bad"] == 0 and child["errors"] == [], child
        assert child["own_edge"] == "to my own edge"
        assert child["pid"] != parent["pid"]
        assert child["service_id"] != parent["service_id"], "a child reused the parent's service connection"
        assert child["edge_id"] != parent["edge_id"], "a child took over the parent's edge id"
    assert len({c["service_id"] for c in children}) == 3, children
    # the parent never noticed: same connections, no errors while it forked
    assert report["parent_errors"] == [] and report["parent_calls"] > 0, report
    assert report["service_id_after"] == parent["service_id"] and report["edge_id_after"] == parent["edge_id"]
    assert report["parent_after"] and report["connected"]


def test_children_forked_while_threads_call_get_their_own_connections(gw):
    check_busy_fork(probe(gw, "busy-fork"))


def test_fork_safety_over_tls(tls_gw):
    """The TLS state (an SSLObject over memory buffers) stays the parent's too."""
    report = probe(tls_gw, "busy-fork")
    check_busy_fork(report)
    assert report["tls"] and all(v and v.startswith("TLSv1.") for v in report["tls"]), report["tls"]
    report = probe(tls_gw, "close-in-child")
    assert report["before"] == report["after"] and report["ok"] and report["connected"]


def test_multiprocessing_fork_pool_uses_the_module_service(gw):
    report = probe(gw, "pool")
    results = report["results"]
    assert [r[2] for r in results] == ["ok"] * 40
    worker_ids = {(pid, sid) for pid, sid, _ in results}
    assert len({pid for pid, _ in worker_ids}) >= 1
    assert all(sid != report["parent_service_id"] for _, sid in worker_ids), worker_ids
    assert len({sid for _, sid in worker_ids}) == len({pid for pid, _ in worker_ids}), "one connection per worker"
    assert report["service_id_after"] == report["parent_service_id"] and report["parent_after"]


def test_closing_the_clients_in_a_child_leaves_the_parent_connected(gw):
    report = probe(gw, "close-in-child")
    assert list(report["status"].values()) == [0]
    assert report["before"] == report["after"], "the parent reconnected: its connection was shut down"
    assert report["ok"] and report["connected"]


def test_a_child_does_not_keep_a_dead_parents_connection_open(gw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(PROBE), "orphan", gw.service_addr, gw.edge_addr],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        info = json.loads(proc.stdout.readline())
        child = info["child"]
        wait_until(lambda: services(gw, "orphan"), 5, what="the orphan service listed")
        proc.kill()  # SIGKILL: nothing runs in the parent; only the kernel closes its socket
        proc.wait(5)
        started = time.monotonic()
        # the child still runs; had it kept its copy of the socket, the gateway would only
        # notice after 3 heartbeat intervals (45 s)
        wait_until(lambda: not services(gw, "orphan"), 5, what="the dead parent's connection gone")
        assert time.monotonic() - started < 5
        os.kill(child, 0)  # the child is alive all along
    finally:
        proc.kill()
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


CONNECT_IN_CHILD = r"""
import json, os, sys
from frontier.sdk import Service
svc = Service(sys.argv[1], name="post-fork", timeout=5)
parent_id = svc.service_id
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    svc.connect(timeout=5)                     # what a gunicorn post_fork hook does
    os.write(write_end, json.dumps({"id": svc.service_id, "connected": svc.connected}).encode())
    os._exit(0)
os.close(write_end)
os.waitpid(pid, 0)
child = json.loads(os.read(read_end, 4096))
print(json.dumps({"parent": parent_id, "parent_after": svc.service_id, "parent_connected": svc.connected, "child": child}))
"""


def test_connect_in_a_forked_child_gives_it_its_own_connection_at_once(gw):
    out = subprocess.run([sys.executable, "-c", CONNECT_IN_CHILD, gw.service_addr], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["child"]["connected"] is True
    assert report["child"]["id"] != report["parent"], "the child reported the parent's service id"
    assert report["parent_after"] == report["parent"] and report["parent_connected"]
