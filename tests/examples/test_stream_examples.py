"""The stream examples for real: a file pulled from an edge (checksum and progress
bar), and a TCP port forward carrying real HTTP requests (issue 8)."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from tests.e2e.proc_tools import ROOT, ChildProcess
from tests.gateway import GatewayProcess, free_port

FILE_TRANSFER = ROOT / "sdk" / "examples" / "file_transfer"
PORT_FORWARD = ROOT / "sdk" / "examples" / "port_forward"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with GatewayProcess(tmp_path_factory.mktemp("streamgw")) as gw:
        yield gw


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_pull_a_file_from_an_edge_with_checksum_and_progress(gw, tmp_path):
    shared = tmp_path / "shared"
    (shared / "logs").mkdir(parents=True)
    payload = os.urandom(6 * 1024 * 1024 + 123)  # several stream windows' worth
    (shared / "logs" / "big.bin").write_bytes(payload)
    (shared / "notes.txt").write_text("hello\n")
    (tmp_path / "secret.txt").write_text("not for services\n")
    agent = ChildProcess([str(FILE_TRANSFER / "agent.py"), "--edge-addr", gw.edge_addr, "--edge-id", "9001",
                          "--root", str(shared)])
    try:
        agent.expect("file agent 9001 serving", 10)
        puller = [str(FILE_TRANSFER / "pull.py"), "--service-addr", gw.service_addr, "--edge-id", "9001"]

        listing = run([*puller, "--list"])
        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.split() == [str(len(payload)), "logs/big.bin", "6", "notes.txt"]

        local = tmp_path / "pulled.bin"
        out = run([*puller, "logs/big.bin", str(local)])
        assert out.returncode == 0, out.stderr
        digest = hashlib.sha256(payload).hexdigest()
        assert local.read_bytes() == payload
        assert f"saved {local} ({len(payload)} bytes, sha256 {digest})" in out.stdout
        # the progress bar (not a terminal here: one line per quarter), ending full
        bars = [line for line in out.stderr.splitlines() if line.startswith("[")]
        assert len(bars) >= 4 and bars[-1].startswith("[" + "#" * 30 + "] 100%"), out.stderr
        agent.expect("sent logs/big.bin", 5)

        # refused: outside the shared directory, or missing; nothing is left behind
        for remote in ("../secret.txt", "nope.txt"):
            target = tmp_path / "refused.txt"
            out = run([*puller, remote, str(target)])
            assert out.returncode == 1 and "pull failed: the agent refused" in out.stderr, out.stderr
            assert not target.exists() and not (tmp_path / "refused.txt.part").exists()

        # an edge that is not there: a typed error, exit 1
        out = run([str(FILE_TRANSFER / "pull.py"), "--service-addr", gw.service_addr, "--edge-id", "9999", "x", str(tmp_path / "x")])
        assert out.returncode == 1 and "pull failed: edge 9999 is not online" in out.stderr, out.stderr
    finally:
        agent.terminate()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_port_forward_carries_real_http_requests(gw, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>behind the NAT</h1>\n")
    big = os.urandom(2 * 1024 * 1024)
    (site / "big.bin").write_bytes(big)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{httpd.server_address[1]}"
    procs: list[ChildProcess] = []
    try:
        expose = ChildProcess([str(PORT_FORWARD / "expose.py"), "--edge-addr", gw.edge_addr, "--edge-id", "9101",
                               "--target", target])
        procs.append(expose)
        expose.expect(f"exposing {target} as edge 9101", 10)
        port = free_port()
        forward = ChildProcess([str(PORT_FORWARD / "forward.py"), "--service-addr", gw.service_addr,
                                "--edge-id", "9101", "--listen", f"127.0.0.1:{port}"])
        procs.append(forward)
        forward.expect(f"forwarding 127.0.0.1:{port} -> edge 9101", 10)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as resp:
            assert resp.status == 200 and resp.read() == b"<h1>behind the NAT</h1>\n"
            assert resp.headers["Server"].startswith("SimpleHTTP")  # the edge-side server answered

        def fetch(i: int) -> bytes:
            path = "big.bin" if i % 2 else "index.html"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=20) as resp:
                return resp.read()

        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(fetch, range(16)))
        assert all(body == (big if i % 2 else b"<h1>behind the NAT</h1>\n") for i, body in enumerate(bodies))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/missing", timeout=10)
        assert refused.value.code == 404  # the edge-side server's own 404, carried back
    finally:
        httpd.shutdown()
        for proc in reversed(procs):
            proc.terminate()
    forward.expect(lambda line: "bytes to the edge" in line, 5)
