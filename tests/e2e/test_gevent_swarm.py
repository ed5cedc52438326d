"""200 SDK edges on greenlets: a gevent-patched process (as under gunicorn's gevent
workers or Locust) runs the blocking SDK unchanged, with real OS threads staying few.

The driver (``swarm_driver.py``) runs in its own process because it must patch before
anything else imports ``socket``; the service lives here, in a plain threaded process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from frontier.sdk import FrontierError, Service
from tests.e2e.proc_tools import ROOT

EDGES = 200
CALLS = 5


def test_two_hundred_edges_on_greenlets(gateway_factory, clients):
    gw = gateway_factory()
    svc = clients(Service, gw.service_addr, name="swarm-svc", topics=["swarm"], timeout=20.0, max_pending=4096)
    svc.register("echo", lambda req: b"echo:" + req.data)

    lock = threading.Lock()
    published: dict[int, bytes] = {}
    whoami: dict[int, bytes] = {}
    failures: list[str] = []
    pool = ThreadPoolExecutor(max_workers=32)

    def answer(msg) -> None:
        try:
            reply = svc.call(msg.edge_id, "whoami", msg.data, timeout=10.0)
        except FrontierError as exc:
            with lock:
                failures.append(f"whoami on {msg.edge_id}: {exc!r}")
            msg.error(exc)
            return
        with lock:
            published[msg.edge_id] = msg.data
            whoami[msg.edge_id] = reply
        msg.done()

    def receive_loop() -> None:
        while True:
            try:
                msg = svc.receive()
            except FrontierError:
                return
            pool.submit(answer, msg)

    threading.Thread(target=receive_loop, daemon=True).start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.e2e.swarm_driver", gw.edge_addr, "--edges", str(EDGES), "--calls", str(CALLS),
             "--deadline", "35"],
            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=50,
        )
    finally:
        pool.shutdown(wait=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print("swarm summary:", {k: v for k, v in summary.items() if k != "edge_ids"})

    assert summary["patched"] is True
    assert summary["error_count"] == 0, summary["errors"]
    assert summary["ok"] == EDGES
    assert summary["connected_at_once"] == EDGES
    assert failures == []
    ids = {int(i): edge_id for i, edge_id in summary["edge_ids"].items()}
    assert len(set(ids.values())) == EDGES, "two edges got the same id"
    # every edge published once and answered the service's call with its own name
    assert summary["served"] == EDGES
    assert {edge_id: whoami[edge_id] for edge_id in ids.values()} == {edge_id: f"edge-{i}".encode() for i, edge_id in ids.items()}
    assert {edge_id: published[edge_id] for edge_id in ids.values()} == {
        edge_id: f"hello from {i}".encode() for i, edge_id in ids.items()
    }
    # greenlets, not threads: the 200 readers and handler pools are not OS threads
    # (peak_active_count, reported, is what patched threading calls threads: greenlets)
    assert summary["peak_os_threads"] <= 16, summary  # main + gevent's resolver pool
