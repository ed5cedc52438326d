"""``call_async``/``publish_async`` from greenlets: patches first, then 20 edges each
issue 50 ``call_async`` at once, 5 ``publish_async`` and 10 blocking calls; checks a
deadline and a typed error; a close while a call waits. Prints one JSON line.

    python -m tests.sdk.gevent_async_driver EDGE_ADDR
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from frontier.sdk import Edge, FrontierError  # noqa: E402
from frontier.sdk.link import _readiness  # noqa: E402


def main() -> None:
    addr = sys.argv[1]
    edges = [Edge(addr, meta=b"gevent-async-%d" % i, timeout=10) for i in range(20)]
    out = {"patched": monkey.is_module_patched("socket"), "echo_sent": 0, "echo_ok": 0, "published": 0, "blocking_calls": 0}
    lock = threading.Lock()

    def run(i: int, edge: Edge) -> None:
        futures = [edge.call_async("echo", b"%d-%d" % (i, k)) for k in range(50)]
        pubs = [edge.publish_async("g", b"p") for _ in range(5)]
        ok = sum(f.result(20) == b"echo:%d-%d" % (i, k) for k, f in enumerate(futures))
        published = sum(f.result(20) is None for f in pubs)
        calls = sum(edge.call("echo", b"b") == b"echo:b" for _ in range(10))
        with lock:
            out["echo_sent"] += len(futures)
            out["echo_ok"] += ok
            out["published"] += published
            out["blocking_calls"] += calls

    threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate(edges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    started = time.monotonic()
    try:
        edges[0].call_async("slow", b"", timeout=0.3).result(10)
        out["timeout"] = "none"
    except FrontierError as exc:
        out["timeout"] = type(exc).__name__
    out["timeout_after"] = time.monotonic() - started
    try:
        edges[0].call_async("nobody", b"").result(10)
        out["rpc_not_online"] = "none"
    except FrontierError as exc:
        out["rpc_not_online"] = type(exc).__name__
    # the reader waits for readability first (after a short read): a close from
    # another greenlet must still end it, and fail the call waiting on it at once
    waiting = edges[1].call_async("slow", b"", timeout=10)
    gevent.sleep(0.2)
    started = time.monotonic()
    edges[1].close()
    try:
        waiting.result(5)
        out["closed_while_waiting"] = "none"
    except FrontierError as exc:
        out["closed_while_waiting"] = type(exc).__name__
    out["closed_after"] = time.monotonic() - started
    out["reads_after_readiness"] = edges[0]._link is not None and _readiness(edges[0]._link.sock) is not None
    for e in edges:
        e.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
