"""Many SDK edges from one gevent-patched process: the SDK must just work on greenlets.

    python -m tests.e2e.swarm_driver EDGE_ADDR [--edges 200] [--calls 5] [--topic swarm]

Patches first (before anything imports ``socket`` or ``threading``), then runs one
greenlet per edge: connect, register ``whoami``, wait until every edge is
connected, call ``echo`` several times, publish
one message (the test's service calls ``whoami`` on the edge before it acks), close.
Prints one JSON summary line on stdout.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402  (after patching, on purpose)
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from frontier.sdk import Edge  # noqa: E402


def os_threads() -> int:
    """Real OS threads of this process (greenlets do not count)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


class Barrier:
    """All edges connect before any calls: 200 connections really are open at once."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.peak_connected = 0
        self.event = gevent.event.Event()

    def wait(self, timeout: float) -> None:
        self.arrived += 1
        self.peak_connected = max(self.peak_connected, self.arrived)
        if self.arrived >= self.parties:
            self.event.set()
        if not self.event.wait(timeout):
            raise TimeoutError(f"only {self.arrived} of {self.parties} edges connected")


def run_edge(addr: str, index: int, calls: int, topic: str, barrier: Barrier) -> dict:
    edge = None
    served: list[bytes] = []
    try:
        edge = Edge(addr, meta=f"swarm-{index}".encode(), timeout=20.0, reconnect=False, handler_threads=2)

        def whoami(req):
            served.append(req.data)
            return f"edge-{index}".encode()

        edge.register("whoami", whoami)
        barrier.wait(20.0)
        for k in range(calls):
            data = f"{index}:{k}".encode()
            answer = edge.call("echo", data)
            if answer != b"echo:" + data:
                raise AssertionError(f"echo answered {answer!r} to {data!r}")
        edge.publish(topic, f"hello from {index}".encode())
        return {"ok": True, "index": index, "edge_id": edge.edge_id, "served": len(served)}
    except Exception as exc:  # reported in the summary, counted by the test
        return {"ok": False, "index": index, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if edge is not None:
            edge.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("addr")
    parser.add_argument("--edges", type=int, default=200)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--topic", default="swarm")
    parser.add_argument("--deadline", type=float, default=40.0)
    args = parser.parse_args()

    started = time.monotonic()
    barrier = Barrier(args.edges)
    greenlets = [gevent.spawn(run_edge, args.addr, i, args.calls, args.topic, barrier) for i in range(args.edges)]
    peak = {"os_threads": os_threads(), "active_count": threading.active_count()}

    def sample() -> None:
        while True:
            gevent.sleep(0.05)
            peak["os_threads"] = max(peak["os_threads"], os_threads())
            peak["active_count"] = max(peak["active_count"], threading.active_count())

    sampler = gevent.spawn(sample)
    gevent.joinall(greenlets, timeout=args.deadline)
    sampler.kill()
    results = [g.value if g.ready() else {"ok": False, "error": "still running at the deadline"} for g in greenlets]
    errors = [r for r in results if not r.get("ok")]
    summary = {
        "edges": args.edges,
        "ok": sum(1 for r in results if r.get("ok")),
        "errors": errors[:10],
        "error_count": len(errors),
        "edge_ids": {str(r["index"]): r["edge_id"] for r in results if r.get("ok")},
        "connected_at_once": barrier.peak_connected,
        "served": sum(r.get("served", 0) for r in results),
        "patched": monkey.is_module_patched("threading") and monkey.is_module_patched("socket"),
        "peak_os_threads": peak["os_threads"],
        "peak_active_count": peak["active_count"],
        "elapsed": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
