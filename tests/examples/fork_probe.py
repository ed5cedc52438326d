"""Fork a process that holds SDK clients, the way gunicorn --preload, multiprocessing
and Celery prefork do, and report what every process saw as one JSON line.

Run by tests/examples/test_fork_safety.py as a subprocess (a fork of pytest itself
would drag pytest's own threads along)::

    python tests/examples/fork_probe.py SCENARIO SERVICE_ADDR EDGE_ADDR
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time

from frontier.sdk import Edge, FrontierError, Service, ServiceNotOnline

SERVICE_ADDR, EDGE_ADDR = sys.argv[2], sys.argv[3]
#: the CA to trust when the gateway's listeners speak TLS
TLS = {"tls_ca": os.environ["FORK_PROBE_TLS_CA"]} if os.environ.get("FORK_PROBE_TLS_CA") else {}

svc: Service
edge: Edge


def setup(name: str = "forky") -> None:
    global svc, edge
    svc = Service(SERVICE_ADDR, name=name, timeout=10, **TLS)
    svc.register("whoami", lambda req: str(os.getpid()).encode())
    edge = Edge(EDGE_ADDR, timeout=10, **TLS)
    edge.register("echo", lambda req: req.data)


def hammer(stop: threading.Event, errors: list[str], counts: list[int], target: int) -> None:
    """Call the parent's edge until ``stop``: keeps both clients' locks busy across forks."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            data = b"parent-%d" % n
            assert svc.call(target, "echo", data) == data  # through both clients' locks
        except (FrontierError, AssertionError) as exc:
            errors.append(repr(exc))
        counts.append(1)


def child_work(parent_edge_id: int) -> dict:
    """What one forked child does with the inherited clients: calls from 4 threads."""
    results: list[bool] = []
    errors: list[str] = []

    def worker(k: int) -> None:
        for i in range(25):
            data = b"child-%d-%d-%d" % (os.getpid(), k, i)
            try:
                results.append(svc.call(parent_edge_id, "echo", data) == data)
            except FrontierError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for attempt in range(5):  # the child's edge connects (with an id of its own)
        try:
            edge.call("whoami", b"")  # any process's service may answer...
            break
        except ServiceNotOnline:  # ...and a sibling may be exiting as it does
            time.sleep(0.05)
    answer = svc.call(edge.edge_id, "echo", b"to my own edge")  # the child's edge serves it
    return {"pid": os.getpid(), "service_id": svc.service_id, "edge_id": edge.edge_id, "ok": sum(results),
            "bad": len(results) - sum(results), "errors": errors, "own_edge": answer.decode()}


def wait_children(pids: list[int], timeout: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    status: dict[int, int] = {}
    while len(status) < len(pids):
        for pid in pids:
            if pid not in status:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status[pid] = os.waitstatus_to_exitcode(code)
        if time.monotonic() > deadline:
            for pid in pids:
                if pid not in status:
                    os.kill(pid, signal.SIGKILL)
                    status[pid] = -9
            break
        time.sleep(0.02)
    return status


def busy_fork() -> dict:
    """Fork 3 children while 4 parent threads keep calling through the clients."""
    setup()
    parent = {"pid": os.getpid(), "service_id": svc.service_id, "edge_id": edge.edge_id}
    stop, errors, counts = threading.Event(), [], []
    hammers = [threading.Thread(target=hammer, args=(stop, errors, counts, edge.edge_id), daemon=True) for _ in range(4)]
    for t in hammers:
        t.start()
    pids, reads = [], []
    for _ in range(3):
        time.sleep(0.1)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(r)
            code = 0
            try:
                report = child_work(parent["edge_id"])
            except BaseException as exc:  # report anything, never fall back into the parent's code
                report, code = {"pid": os.getpid(), "crash": repr(exc)}, 1
            os.write(w, json.dumps(report).encode())
            os._exit(code)
        os.close(w)
        pids.append(pid)
        reads.append(r)
    status = wait_children(pids, 60)
    children = []
    for r in reads:
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        children.append(json.loads(raw) if raw else {"crash": "no report"})
    stop.set()
    for t in hammers:
        t.join(10)
    data = b"after the forks"
    after = svc.call(edge.edge_id, "echo", data) == data
    return {"parent": parent, "children": children, "status": status, "parent_errors": errors,
            "parent_calls": len(counts), "parent_after": after, "service_id_after": svc.service_id,
            "edge_id_after": edge.edge_id, "connected": svc.connected and edge.connected,
            "tls": [svc._link.sock.version(), edge._link.sock.version()] if TLS else None}


def _pool_task(args: tuple[int, int]) -> tuple[int, int, str]:
    edge_id, i = args
    data = b"pool-%d" % i
    ok = svc.call(edge_id, "echo", data) == data  # first use in the worker: it connects
    return os.getpid(), svc.service_id, "ok" if ok else "bad"


def pool() -> dict:
    """multiprocessing's fork start method: a Pool of 2 uses the module's Service."""
    setup()
    before = svc.service_id
    with multiprocessing.get_context("fork").Pool(2) as p:
        got = p.map(_pool_task, [(edge.edge_id, i) for i in range(40)], chunksize=5)
    return {"parent_service_id": before, "results": got, "service_id_after": svc.service_id,
            "parent_after": svc.call(edge.edge_id, "echo", b"x") == b"x"}


def close_in_child() -> dict:
    """A child that closes the inherited clients must not end the parent's connections."""
    setup()
    before = (svc.service_id, edge.edge_id)
    pid = os.fork()
    if pid == 0:
        svc.close()
        edge.close()
        os._exit(0)
    status = wait_children([pid], 10)
    time.sleep(0.3)  # a shutdown would have reached the parent's reader by now
    ok = svc.call(edge.edge_id, "echo", b"still here") == b"still here"
    return {"status": status, "before": before, "after": (svc.service_id, edge.edge_id), "ok": ok,
            "connected": svc.connected and edge.connected}


def orphan() -> None:
    """Connect, fork a child that only sleeps, print both pids and wait: the test then
    kills this parent; its connection must end although the child lives on."""
    global svc
    svc = Service(SERVICE_ADDR, name="orphan", timeout=10, **TLS)
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    print(json.dumps({"parent": os.getpid(), "child": pid, "service_id": svc.service_id}), flush=True)
    time.sleep(60)


if __name__ == "__main__":
    scenario = sys.argv[1]
    if scenario == "orphan":
        orphan()
    else:
        print(json.dumps({"busy-fork": busy_fork, "pool": pool, "close-in-child": close_in_child}[scenario]()), flush=True)
        os._exit(0)  # no interpreter teardown racing the clients' daemon threads
